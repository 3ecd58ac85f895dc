package smime

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sealpost/sealpost/internal/interop"
)

// nssP12Pass protects the throwaway PKCS#12 files that carry the customers' keys into NSS.
const nssP12Pass = "sealpost-test"

// nssPeer is what the NSS tests share: the PEM fixture files and one PKCS#12 file per customer.
type nssPeer struct {
	files pemFiles
	p12s  []string
}

func newNSSPeer(t *testing.T, f *fixture) nssPeer {
	t.Helper()
	p := nssPeer{files: f.files(t)}
	for i := range f.customers {
		p12 := filepath.Join(p.files.dir, "cust"+strconv.Itoa(i)+".p12")
		interop.Run(t, nil, "openssl", "pkcs12", "-export", "-in", p.files.certs[i], "-inkey", p.files.keys[i],
			"-name", "cust"+strconv.Itoa(i), "-passout", "pass:"+nssP12Pass, "-out", p12)
		p.p12s = append(p.p12s, p12)
	}
	return p
}

// db creates an empty-password NSS database in a temp dir, trusting the CA for e-mail when trustCA is
// set, and holding the keys and certificates of the customers numbered in keysOf. It returns the
// "sql:DIR" argument for -d.
func (p nssPeer) db(t *testing.T, trustCA bool, keysOf ...int) string {
	t.Helper()
	db := "sql:" + t.TempDir()
	interop.Run(t, nil, "certutil", "-N", "-d", db, "--empty-password")
	if trustCA {
		interop.Run(t, nil, "certutil", "-A", "-d", db, "-n", "sealpost test CA", "-t", "CT,C,C", "-a", "-i", p.files.ca)
	}
	for _, i := range keysOf {
		interop.Run(t, nil, "pk12util", "-i", p.p12s[i], "-d", db, "-W", nssP12Pass, "-K", "")
	}
	return db
}

// nssVersion names the installed NSS for log messages; it is informational only.
func nssVersion() string {
	v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "libnss3").Output()
	if err != nil || len(v) == 0 {
		return "(version unknown)"
	}
	return string(v)
}

// TestNSSDecryptsAndVerifies has NSS, the library Thunderbird uses, open sealpost's envelopes with
// cmsutil and verify the detached signature inside, from a database that trusts only the test CA.
func TestNSSDecryptsAndVerifies(t *testing.T) {
	for _, tool := range []string{"certutil", "pk12util", "cmsutil", "openssl"} {
		interop.Tool(t, tool)
	}
	f := getFixture(t)
	peer := newNSSPeer(t, f)
	tests := []struct {
		name       string
		recipients int
		gcm        bool
		decryptAs  int // the only customer whose key is in the NSS database
		smimeType  string
	}{
		{"OneRecipientCBC", 1, false, 0, "enveloped-data"},
		// NSS holds only the third customer's key, so it must pick that RecipientInfo out of three.
		{"ThreeRecipientsCBCAsThird", 3, false, 2, "enveloped-data"},
		{"OneRecipientGCM", 1, true, 0, "authEnveloped-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.protector.ProtectMessage(ctx, []byte(statement), recipients(f.customers[:tt.recipients], tt.gcm, false), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(head(out), []byte("smime-type="+tt.smimeType)) {
				t.Fatalf("output is not %s:\n%s", tt.smimeType, head(out))
			}
			der := envelopeDER(t, out)
			// What the recipient sees through sealpost's own reader; NSS must see the same bytes.
			want, err := Decrypt(der, f.customers[tt.decryptAs])
			if err != nil {
				t.Fatalf("Go-side Decrypt: %v", err)
			}
			dir := t.TempDir()
			env := filepath.Join(dir, "env.der")
			write(t, env, der)
			db := peer.db(t, true, tt.decryptAs)

			got, stderr, err := interop.Try(t, nil, "cmsutil", "-D", "-i", env, "-d", db)
			if tt.gcm {
				// NSS's CMS code knows no id-ct-authEnvelopedData (RFC 5083) content type: it fails
				// on the outer ContentInfo before looking at recipients or the cipher.
				if err == nil {
					t.Fatalf("NSS %s now decrypts AES-GCM AuthEnvelopedData: make this subtest check the content like the CBC ones", nssVersion())
				}
				if !bytes.Contains(stderr, []byte("SEC_ERROR_UNRECOGNIZED_OID")) {
					t.Fatalf("NSS failed on AuthEnvelopedData for a reason other than the unknown content type: %v\n%s", err, stderr)
				}
				t.Logf("NSS %s does not support AuthEnvelopedData (%s); sealpost uses GCM only for recipients whose SMIMECapabilities announce it",
					nssVersion(), bytes.TrimSpace(stderr[bytes.Index(stderr, []byte("SEC_ERROR_")):]))
				return
			}
			if err != nil {
				t.Fatalf("cmsutil -D failed to decrypt: %v\n%s", err, stderr)
			}
			if !bytes.Equal(got, want.Content) {
				t.Fatalf("NSS decrypted different bytes than sealpost's Decrypt:\nNSS:\n%s\nGo:\n%s", head(got), head(want.Content))
			}
			if !bytes.HasPrefix(got, []byte("Content-Type: multipart/signed")) || !bytes.Contains(got, []byte("statement.pdf")) {
				t.Fatalf("decrypted content is not the signed statement:\n%s", got)
			}
			nssVerify(t, peer, dir, db, got)
		})
	}
}

// nssVerify has cmsutil verify the detached signature of the multipart/signed entity for e-mail
// signing (certUsageEmailSigner, -u 4), and refuse it over changed content or without the trusted CA.
func nssVerify(t *testing.T, peer nssPeer, dir, db string, entity []byte) {
	t.Helper()
	content, sig := splitSigned(t, entity)
	contentFile, sigFile := filepath.Join(dir, "content.bin"), filepath.Join(dir, "sig.der")
	write(t, sigFile, sig)
	write(t, contentFile, content)
	verify := []string{"-D", "-i", sigFile, "-c", contentFile, "-d", db, "-u", "4"}
	// Without -h, cmsutil exits non-zero on any signer status but GoodSignature and prints the content.
	if got := interop.Run(t, nil, "cmsutil", verify...); !bytes.Equal(got, content) {
		t.Fatalf("cmsutil verified but output other content:\n%s", got)
	}
	// -h 1 prints each signer's status; it exits 0 whatever the status, so the text is what counts.
	report := interop.Run(t, nil, "cmsutil", append(verify, "-n", "-h", "1")...)
	if !bytes.Contains(report, []byte(`signer0.id="sealpost bank signer"; signer0.status=GoodSignature;`)) {
		t.Fatalf("cmsutil does not report a good signature:\n%s", report)
	}

	// One byte changed in the signed content: the attachment's first base64 character.
	bad := bytes.Clone(content)
	i := bytes.Index(bad, []byte("JVBERi0x"))
	if i < 0 {
		t.Fatal("attachment not found in signed content")
	}
	bad[i] = 'K'
	write(t, contentFile, bad)
	if _, stderr, err := interop.Try(t, nil, "cmsutil", verify...); err == nil || !bytes.Contains(stderr, []byte("DigestMismatch")) {
		t.Fatalf("cmsutil accepted changed content (err %v):\n%s", err, stderr)
	}
	if report := interop.Run(t, nil, "cmsutil", append(verify, "-n", "-h", "1")...); !bytes.Contains(report, []byte("signer0.status=DigestMismatch;")) {
		t.Fatalf("cmsutil does not report a digest mismatch for changed content:\n%s", report)
	}

	// The original content, but a database that does not trust the CA: the chain is what NSS trusts.
	write(t, contentFile, content)
	untrusted := []string{"-D", "-i", sigFile, "-c", contentFile, "-d", peer.db(t, false), "-u", "4"}
	if report := interop.Run(t, nil, "cmsutil", append(untrusted, "-n", "-h", "1")...); !bytes.Contains(report, []byte("signer0.status=SigningCertNotTrusted;")) {
		t.Fatalf("cmsutil without the CA does not report an untrusted signer:\n%s", report)
	}
}
