package ops

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SpoolWritable checks what queueing a message needs of the spool in dir (the directory given to
// queue.Open): a file can be created in its tmp directory, written, fsynced and removed. The
// directory is not created when missing: that is the failure to report. A probe file left by a
// crash is removed by the spool's next Open, like any temporary file.
func SpoolWritable(dir string) Check {
	tmp := filepath.Join(dir, "tmp")
	return func(context.Context) error {
		f, err := os.CreateTemp(tmp, ".readyz-*")
		if err != nil {
			return fmt.Errorf("spool not writable: %w", err)
		}
		_, err = f.Write([]byte{'\n'})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(f.Name()); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("spool not writable: %w", err)
		}
		return nil
	}
}

// CertificateValid checks that cert (a bank identity's, e.g. the signer's) is loaded and within
// its validity period: past notAfter nothing can be signed and every message would get a 4xx.
func CertificateValid(cert *x509.Certificate) Check {
	return func(context.Context) error {
		if cert == nil {
			return errors.New("no certificate loaded")
		}
		now := time.Now()
		switch {
		case now.Before(cert.NotBefore):
			return fmt.Errorf("certificate %q is not valid before %s", cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339))
		case now.After(cert.NotAfter):
			return fmt.Errorf("certificate %q expired at %s", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return nil
	}
}

// StorePingTimeout bounds one ping of the shared store, well under the readiness timeout: a store
// that does not answer in time is reported as down by its own check rather than by /readyz timing
// out as a whole.
const StorePingTimeout = 2 * time.Second

// StoreAnswers checks that the shared store answers ping within StorePingTimeout. Without the
// store, mail that needs it (registrations, threads, the quarantine) is deferred with 451, so the
// node should not be given traffic.
func StoreAnswers(ping Check) Check {
	return func(ctx context.Context) error {
		if err := pingStore(ctx, ping); err != nil {
			return fmt.Errorf("store does not answer: %w", err)
		}
		return nil
	}
}

// pingStore runs ping with StorePingTimeout, abandoning one that does not honour its context.
func pingStore(ctx context.Context, ping Check) error {
	ctx, cancel := context.WithTimeout(ctx, StorePingTimeout)
	defer cancel()
	return runCheck(ctx, ping)
}
