package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealpost/sealpost/ca"
	"github.com/sealpost/sealpost/keys"
)

// caIssue is `sealpost ca issue`: the customer CA (customer-ca in the data directory, or in the HSM
// the configuration names) issues ADDR a certificate with a key it makes, for development without
// openssl. It writes OUTDIR/ADDR.p12 and OUTDIR/ADDR.key (0600) and OUTDIR/ADDR.pem (certificate and
// chain), prints the PKCS#12 password once, and registers the certificate for ADDR as keys import
// does.
func caIssue(args []string, _ io.Reader, stdout, _ io.Writer) error {
	fs := newFlags("ca issue", stdout)
	configFile, data := keysStoreFlags(fs)
	out := fs.String("out", "", "directory for ADDR.p12, ADDR.pem and ADDR.key (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		return fmt.Errorf("%w: ca issue [-config FILE] [-data DIR] ADDR -out DIR", errUsage)
	}
	addr := fs.Arg(0)
	if addr != filepath.Base(addr) || strings.HasPrefix(addr, ".") {
		return fmt.Errorf("%w: %q cannot name files in %s", errUsage, printableLine(addr), *out)
	}
	if *configFile == "" && *data == "" {
		return fmt.Errorf("%w: -data DIR is required", errUsage)
	}
	cfg, err := loadConfig(*configFile, *data)
	if err != nil {
		return err
	}
	dir, err := existingDataDir(cfg.Data)
	if err != nil {
		return err
	}
	id, closer, err := loadRole(dir, cfg.HSM, keys.RoleCustomerCA)
	if err != nil {
		return err
	}
	if closer != nil {
		defer closer.Close()
	}
	st, err := openStore(string(dir), cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	cst, ok := st.(ca.Store)
	if !ok {
		return fmt.Errorf("the configured store keeps no issued certificates")
	}
	authority, err := ca.New(cfg.CA, id, cst)
	if err != nil {
		return err
	}
	ctx := context.Background()
	got, err := authority.IssueWithKey(ctx, addr)
	if err != nil {
		return err
	}
	chainPEM := keys.EncodeCertificates(append([]*x509.Certificate{got.Certificate}, got.Chain...)...)
	if err := writeIssued(*out, addr, got, chainPEM); err != nil {
		return err
	}
	imp, err := importShared(ctx, st, chainPEM, keys.ImportOptions{})
	if err != nil {
		return err
	}
	if err := register(st, imp, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issued %s serial %X, expires %s: %s.p12, %s.pem, %s.key in %s\n", addr, got.Certificate.SerialNumber,
		got.Certificate.NotAfter.UTC().Format("2006-01-02"), addr, addr, addr, *out)
	fmt.Fprintf(stdout, "PKCS#12 password (shown once, not stored): %s\n", got.Password)
	return nil
}

// writeIssued writes the PKCS#12, the certificate with its chain, and the key (PKCS#8 PEM, read
// back from the PKCS#12: the CA keeps no copy of its own).
func writeIssued(out, addr string, got ca.Issued, chainPEM []byte) error {
	id, err := keys.ParsePKCS12(got.PKCS12, got.Password)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		ext  string
		data []byte
		perm os.FileMode
	}{
		{".p12", got.PKCS12, 0o600},
		{".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{".pem", chainPEM, 0o644},
	} {
		if err := os.WriteFile(filepath.Join(out, addr+f.ext), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}
