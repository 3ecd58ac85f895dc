package dkim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/queue"
)

type namedSigner struct {
	name string
	s    *Signer
}

func signers(f *fixture) []namedSigner {
	return []namedSigner{{"rsa-sha256", f.rsa}, {"ed25519-sha256", f.ed}}
}

func mustSign(t *testing.T, s *Signer, msg []byte) []byte {
	t.Helper()
	out, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out, msg) {
		t.Fatal("message was not signed")
	}
	return out
}

// TestSignVerifies signs realistic sealpost output (S/MIME and PGP/MIME, small and 1 MB) with each
// key type, and has every verifier check the signature.
func TestSignVerifies(t *testing.T) {
	f := getFixture(t)
	msgs := []struct {
		name string
		data []byte
	}{
		{"smime", f.smimeOutput(t, 2048)},
		{"pgp", f.pgpOutput(t, 2048)},
		{"smime-1MB", f.smimeOutput(t, 1<<20)},
		{"pgp-1MB", f.pgpOutput(t, 1<<20)},
	}
	for _, s := range signers(f) {
		for _, m := range msgs {
			t.Run(s.name+"/"+m.name, func(t *testing.T) {
				in := bytes.Clone(m.data)
				out := mustSign(t, s.s, m.data)
				if !bytes.Equal(m.data, in) {
					t.Fatal("Sign modified its input")
				}
				// The output is one DKIM-Signature field followed by the input, byte for byte.
				h, err := parseHeader(out)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.EqualFold(h[0].name, "DKIM-Signature") || h.count("DKIM-Signature") != 1 {
					t.Fatalf("want one leading DKIM-Signature field, got header %q", out[:200])
				}
				if !bytes.HasSuffix(out, m.data) || !bytes.HasPrefix(out[len(out)-len(m.data)-2:], []byte("\r\n")) {
					t.Fatal("output is not a field in front of the unchanged input")
				}
				for _, v := range verifiers {
					t.Run(v.name, func(t *testing.T) {
						t.Parallel()
						mustVerify(t, v, s.s, out)
					})
				}
			})
		}
	}
}

// TestSignedFields checks h=: every listed field present is oversigned, absent ones are listed
// once (so they cannot be added), except Date and Message-ID.
func TestSignedFields(t *testing.T) {
	f := getFixture(t)
	msg := "From: statements@bank.example\r\nTo: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n" +
		"X-Mailer: bank\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	got := signatureFields(t, mustSign(t, f.ed, []byte(msg)))
	want := map[string]int{
		"from": 2, "to": 3, "subject": 2, "mime-version": 2, "content-type": 2, // present: n+1
		"cc": 1, "content-transfer-encoding": 1, "in-reply-to": 1, "references": 1, "reply-to": 1, // absent
		"date": 0, "message-id": 0, "x-mailer": 0,
	}
	for name, n := range want {
		if c := count(got, name); c != n {
			t.Errorf("h= lists %s %d times, want %d (h=%v)", name, c, n, got)
		}
	}
	got = signatureFields(t, mustSign(t, f.ed, statement("alice@example.com", 100)))
	if count(got, "date") != 2 || count(got, "message-id") != 2 {
		t.Errorf("present Date and Message-ID must be oversigned: h=%v", got)
	}
}

// TestTamperFails changes a signed message the ways an attacker or a careless relay would; every
// verifier must then reject it. The untouched message and changes relaxed canonicalisation allows
// must still verify, so the test can tell a broken verifier from a rejected signature.
func TestTamperFails(t *testing.T) {
	f := getFixture(t)
	base := f.smimeOutput(t, 2048)
	cases := []struct {
		name   string
		change func(msg []byte) []byte
		ok     bool
	}{
		{"untouched", func(m []byte) []byte { return m }, true},
		{"relaxed: whitespace in a header field", func(m []byte) []byte {
			return bytes.Replace(m, []byte("\r\nSubject: "), []byte("\r\nSubject:  \t "), 1)
		}, true},
		{"relaxed: Received field added by a relay", func(m []byte) []byte {
			return append([]byte("Received: from sealpost by mx.bank.example; Tue, 31 Mar 2026 18:00:01 +0200\r\n"), m...)
		}, true},
		{"body byte changed", changeBodyByte, false},
		{"body line appended", func(m []byte) []byte { return append(bytes.Clone(m), "P.S. call +1 555 0100\r\n"...) }, false},
		{"signed header changed", func(m []byte) []byte {
			return bytes.Replace(m, []byte("\r\nSubject: "), []byte("\r\nSubject: Urgent "), 1)
		}, false},
		{"second From on top", func(m []byte) []byte {
			return append([]byte("From: security@bank.example\r\n"), m...)
		}, false},
		{"second From below the first", func(m []byte) []byte { return insertAfterField(m, "From", "From: security@bank.example\r\n") }, false},
		{"Subject added on top", func(m []byte) []byte {
			return append([]byte("Subject: Urgent: confirm your account\r\n"), m...)
		}, false},
		{"Reply-To added", func(m []byte) []byte {
			return insertAfterField(m, "From", "Reply-To: helpdesk@bank-example.net\r\n")
		}, false},
	}
	for _, s := range signers(f) {
		signed := mustSign(t, s.s, base)
		for _, c := range cases {
			msg := c.change(bytes.Clone(signed))
			for _, v := range verifiers {
				t.Run(s.name+"/"+c.name+"/"+v.name, func(t *testing.T) {
					t.Parallel()
					if c.ok {
						mustVerify(t, v, s.s, msg)
					} else {
						mustNotVerify(t, v, s.s, msg)
					}
				})
			}
		}
	}
}

// changeBodyByte replaces a letter in the middle of the body with another letter.
func changeBodyByte(m []byte) []byte {
	body := bytes.Index(m, []byte("\r\n\r\n")) + 4
	for i := body + (len(m)-body)/2; i < len(m); i++ {
		if c := m[i]; 'a' <= c && c <= 'y' {
			m[i]++
			return m
		}
	}
	panic("no letter in the body")
}

// insertAfterField inserts field after the first field named name (with its continuation lines).
func insertAfterField(m []byte, name, field string) []byte {
	i := bytes.Index(m, []byte("\r\n"+name+":")) + 2
	for {
		i += bytes.Index(m[i:], []byte("\r\n")) + 2
		if m[i] != ' ' && m[i] != '\t' {
			break
		}
	}
	return append(append(bytes.Clone(m[:i]), field...), m[i:]...)
}

// TestNoKeyPassesUnchanged: mail from a domain without a key, subdomains of a configured domain
// included, is returned as it is.
func TestNoKeyPassesUnchanged(t *testing.T) {
	f := getFixture(t)
	for _, from := range []string{"notices@other.example", "alerts@mail.bank.example", "x@bank.example.com"} {
		msg := []byte("From: " + from + "\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
		out, err := f.rsa.Sign(msg)
		if err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if &out[0] != &msg[0] || len(out) != len(msg) {
			t.Errorf("%s: message changed", from)
		}
		domain := from[strings.IndexByte(from, '@')+1:]
		if f.rsa.Signs(domain) {
			t.Errorf("Signs(%q) = true", domain)
		}
	}
	if !f.rsa.Signs("Bank.EXAMPLE") {
		t.Error(`Signs("Bank.EXAMPLE") = false`)
	}
}

// TestFromDomainCase: the From domain matches the configured one case-insensitively, and d= is the
// configured (lower-case) domain.
func TestFromDomainCase(t *testing.T) {
	f := getFixture(t)
	msg := []byte("From: =?iso-2022-jp?B?GyRCJF4bKEI=?= <Statements@BANK.Example>\r\nTo: a@example.com\r\n\r\nx\r\n")
	mustVerify(t, verifiers[0], f.rsa, mustSign(t, f.rsa, msg))
}

// TestUnsignable: input that verifiers could read differently from the signer is refused.
func TestUnsignable(t *testing.T) {
	f := getFixture(t)
	cases := map[string]string{
		"bare LF":                    "From: a@bank.example\nTo: b@example.com\r\n\r\nhi\r\n",
		"bare LF in body":            "From: a@bank.example\r\n\r\nhi\nthere\r\n",
		"bare CR":                    "From: a@bank.example\r\n\r\nhi\rthere\r\n",
		"no end of header":           "From: a@bank.example\r\nTo: b@example.com\r\n",
		"empty":                      "",
		"no From":                    "To: b@example.com\r\n\r\nhi\r\n",
		"empty header":               "\r\nFrom: a@bank.example\r\n",
		"two From fields":            "From: a@bank.example\r\nfrom: a@bank.example\r\n\r\nhi\r\n",
		"two From addresses":         "From: a@bank.example, b@bank.example\r\n\r\nhi\r\n",
		"From group":                 "From: bank:;\r\n\r\nhi\r\n",
		"unparsable From":            "From: <a@bank.example\r\n\r\nhi\r\n",
		"continuation first":         " From: a@bank.example\r\n\r\nhi\r\n",
		"line without colon":         "From: a@bank.example\r\nnot a field\r\n\r\nhi\r\n",
		"space before colon":         "From : a@bank.example\r\n\r\nhi\r\n",
		"control character in name":  "From: a@bank.example\r\nX\x01: y\r\n\r\nhi\r\n",
		"empty field name":           "From: a@bank.example\r\n: y\r\n\r\nhi\r\n",
		"From without domain":        "From: a\r\n\r\nhi\r\n",
		"From folded, two addresses": "From: a@bank.example,\r\n b@other.example\r\n\r\nhi\r\n",
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := f.rsa.Sign([]byte(msg))
			if !errors.Is(err, ErrUnsignable) {
				t.Fatalf("err = %v, want ErrUnsignable", err)
			}
			if out != nil {
				t.Fatal("output with an error")
			}
		})
	}
}

// TestNewErrors covers each way a key configuration is refused.
func TestNewErrors(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p, err := writePEM(dir, name, typ, der)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakFile, err := writePKCS8(dir, "rsa1024.pem", weak)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecFile, err := writePKCS8(dir, "p256.pem", ec)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := os.ReadFile(f.rsaFile)
	if err != nil {
		t.Fatal(err)
	}
	edPEM, err := os.ReadFile(f.edFile)
	if err != nil {
		t.Fatal(err)
	}
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{0x30},
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}})

	one := func(c KeyConfig) []KeyConfig { return []KeyConfig{c} }
	good := KeyConfig{Domain: "bank.example", Selector: "s1", KeyFile: f.rsaFile}
	with := func(change func(*KeyConfig)) []KeyConfig { c := good; change(&c); return one(c) }
	cases := []struct {
		name string
		keys []KeyConfig
		want error
	}{
		{"no keys", nil, ErrConfig},
		{"missing file", with(func(c *KeyConfig) { c.KeyFile = filepath.Join(dir, "missing.pem") }), fs.ErrNotExist},
		{"directory", with(func(c *KeyConfig) { c.KeyFile = dir }), nil},
		{"no key_file", with(func(c *KeyConfig) { c.KeyFile = "" }), ErrConfig},
		{"not PEM", with(func(c *KeyConfig) { c.KeyFile = file("garbage.pem", "not a key\n") }), ErrKeyFormat},
		{"empty file", with(func(c *KeyConfig) { c.KeyFile = file("empty.pem", "") }), ErrKeyFormat},
		{"public key", with(func(c *KeyConfig) { c.KeyFile = write("pub.pem", "PUBLIC KEY", spki) }), ErrKeyFormat},
		{"corrupt PKCS#8", with(func(c *KeyConfig) { c.KeyFile = write("corrupt.pem", "PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}) }), ErrKeyFormat},
		{"encrypted PKCS#8", with(func(c *KeyConfig) { c.KeyFile = write("enc.pem", "ENCRYPTED PRIVATE KEY", []byte{0x30}) }), ErrKeyFormat},
		{"encrypted PKCS#1", with(func(c *KeyConfig) { c.KeyFile = file("enc1.pem", string(legacyEncrypted)) }), ErrKeyFormat},
		{"two keys in one file", with(func(c *KeyConfig) { c.KeyFile = file("two.pem", string(rsaPEM)+string(edPEM)) }), ErrKeyFormat},
		{"RSA-1024", with(func(c *KeyConfig) { c.KeyFile = weakFile }), ErrWeakKey},
		{"ECDSA PKCS#8", with(func(c *KeyConfig) { c.KeyFile = ecFile }), ErrUnsupportedKey},
		{"ECDSA SEC1", with(func(c *KeyConfig) { c.KeyFile = write("sec1.pem", "EC PRIVATE KEY", sec1) }), ErrUnsupportedKey},
		{"empty selector", with(func(c *KeyConfig) { c.Selector = "" }), ErrConfig},
		{"bad selector", with(func(c *KeyConfig) { c.Selector = "s 1;" }), ErrConfig},
		{"empty domain", with(func(c *KeyConfig) { c.Domain = "" }), ErrConfig},
		{"domain with trailing dot", with(func(c *KeyConfig) { c.Domain = "bank.example." }), ErrConfig},
		{"domain as address", with(func(c *KeyConfig) { c.Domain = "x@bank.example" }), ErrConfig},
		{"duplicate domain", []KeyConfig{good, {Domain: "BANK.example", Selector: "s2", KeyFile: f.edFile}}, ErrDuplicateDomain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.keys)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error", s, err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if len(c.keys) == 0 {
				return
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want a *KeyError", err)
			}
			last := c.keys[len(c.keys)-1]
			if ke.Domain != last.Domain || ke.File != last.KeyFile {
				t.Fatalf("KeyError names %q / %q, want %q / %q", ke.Domain, ke.File, last.Domain, last.KeyFile)
			}
		})
	}
}

// TestNewAccepts: PKCS#1 RSA, RSA-4096, an Ed25519 key beside other PEM blocks, several domains.
func TestNewAccepts(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	big, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1, err := writePEM(dir, "pkcs1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(big))
	if err != nil {
		t.Fatal(err)
	}
	edPEM, err := os.ReadFile(f.edFile)
	if err != nil {
		t.Fatal(err)
	}
	mixed := filepath.Join(dir, "mixed.pem")
	if err := os.WriteFile(mixed, append([]byte("# Ed25519 key for otp mail\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), edPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New([]KeyConfig{
		{Domain: "bank.example", Selector: "s1", KeyFile: pkcs1},
		{Domain: "Notify.Bank.Example", Selector: "ed-2026.q1", KeyFile: mixed},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"statements@bank.example", "otp@notify.bank.example"} {
		msg := []byte("From: " + from + "\r\nTo: a@example.com\r\n\r\nx\r\n")
		mustVerify(t, verifiers[0], s, mustSign(t, s, msg))
	}
}

func TestDNSRecord(t *testing.T) {
	f := getFixture(t)
	for _, c := range []struct {
		s          *Signer
		name, algo string
		check      func([]byte) error
	}{
		{f.rsa, "rsa2026._domainkey.bank.example", "rsa", func(p []byte) error {
			pub, err := x509.ParsePKIXPublicKey(p)
			if k, ok := pub.(*rsa.PublicKey); err != nil || !ok || k.N.BitLen() != 2048 {
				return fmt.Errorf("p= is not an RSA-2048 SubjectPublicKeyInfo: %v", err)
			}
			return nil
		}},
		{f.ed, "ed2026._domainkey.bank.example", "ed25519", func(p []byte) error {
			if len(p) != ed25519.PublicKeySize {
				return fmt.Errorf("p= has %d bytes, want %d", len(p), ed25519.PublicKeySize)
			}
			return nil
		}},
	} {
		name, value, err := c.s.DNSRecord("Bank.Example")
		if err != nil {
			t.Fatal(err)
		}
		prefix := "v=DKIM1; k=" + c.algo + "; p="
		if name != c.name || !strings.HasPrefix(value, prefix) {
			t.Fatalf("DNSRecord = %q, %q", name, value)
		}
		p, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(value, prefix))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.check(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.rsa.DNSRecord("other.example"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
}

// memSpool records what is queued.
type memSpool struct {
	mu      sync.Mutex
	msgs    map[string]*queue.Message
	deleted []string
}

func (s *memSpool) Put(_ context.Context, m *queue.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msgs == nil {
		s.msgs = map[string]*queue.Message{}
	}
	id := fmt.Sprintf("Q%d", len(s.msgs)+1)
	s.msgs[id] = m
	return id, nil
}

func (s *memSpool) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msgs, id)
	s.deleted = append(s.deleted, id)
	return nil
}

func TestSpool(t *testing.T) {
	f := getFixture(t)
	next := &memSpool{}
	sp := Spool{Next: next, Signer: f.rsa}
	data := f.pgpOutput(t, 2048)
	m := &queue.Message{From: "statements@bank.example", Recipients: []string{"carol@example.org"}, Data: data, Class: "statement"}
	id, err := sp.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	q := next.msgs[id]
	if q == nil || q == m || !bytes.Equal(m.Data, data) {
		t.Fatal("Put must queue a signed copy and leave the caller's message alone")
	}
	if q.From != m.From || q.Class != m.Class || len(q.Recipients) != 1 {
		t.Fatalf("envelope changed: %+v", q)
	}
	mustVerify(t, verifiers[0], f.rsa, q.Data)
	if err := sp.Delete(id); err != nil || len(next.deleted) != 1 || next.deleted[0] != id {
		t.Fatalf("Delete: %v %v", err, next.deleted)
	}

	// Unsignable data is not queued.
	bad := &queue.Message{From: "statements@bank.example", Recipients: []string{"a@example.com"}, Data: []byte("From: statements@bank.example\n\nx\n")}
	if _, err := sp.Put(context.Background(), bad); !errors.Is(err, ErrUnsignable) {
		t.Fatalf("err = %v, want ErrUnsignable", err)
	}
	if len(next.msgs) != 0 {
		t.Fatal("unsignable message was queued")
	}
	// Neither is anything without a Signer.
	if _, err := (Spool{Next: next}).Put(context.Background(), m); err == nil || len(next.msgs) != 0 {
		t.Fatalf("Put without a Signer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sp.Put(ctx, m); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
}

// TestSignConcurrent: one Signer used from many goroutines (run with -race).
func TestSignConcurrent(t *testing.T) {
	f := getFixture(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := f.rsa
			if i%2 == 1 {
				s = f.ed
			}
			out, err := s.Sign(statement(fmt.Sprintf("c%d@example.com", i), 4096))
			if err == nil {
				err = verifyMsgauth(t, s, out)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
