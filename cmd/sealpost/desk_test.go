package main

import (
	"bytes"
	stdmime "mime"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/interop"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/mime"
)

// The desk's message over real SMTP through serve (issue 11, items 1 and 2): what a customer's
// reply, hostile or not, shows the support desk in its Maildir.

// deskInstance is a running gateway and a customer bob with a valid certificate from its CA, not
// registered unless register is set.
type deskInstance struct {
	inst  *instance
	cfg   Config
	bob   *keys.Identity
	alice *keys.Identity
	files string
}

func newDeskInstance(t *testing.T, register bool, edit func(*Config)) *deskInstance {
	t.Helper()
	inst, cfg, alice, _ := testInstance(t, edit)
	ca, err := keys.DataDir(cfg.Data).Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ca.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := &deskInstance{inst: inst, cfg: cfg, bob: bob, alice: alice, files: t.TempDir()}
	if register {
		cert, _ := writeIdentity(t, d.files, "bob-reg", bob)
		if code, out, errOut := runCLI(t, "", "keys", "import", "-data", cfg.Data, cert); code != 0 || !strings.Contains(out, "registered") {
			t.Fatalf("register bob: %s %s", out, errOut)
		}
	}
	return d
}

// signed is header followed by entity (CRLF) signed by id with openssl cms -sign, as a customer's
// client would send it.
func (d *deskInstance) signed(t *testing.T, id *keys.Identity, header, entity string) string {
	t.Helper()
	interop.Tool(t, "openssl")
	name := strings.SplitN(id.Certificate().EmailAddresses[0], "@", 2)[0]
	cert, key := writeIdentity(t, d.files, name, id)
	in := filepath.Join(d.files, "entity.txt")
	if err := os.WriteFile(in, []byte(entity), 0o600); err != nil {
		t.Fatal(err)
	}
	out := interop.Run(t, nil, "openssl", "cms", "-sign", "-in", in, "-signer", cert, "-inkey", key, "-binary")
	return header + string(mime.ToCRLF(out))
}

// reply sends msg to the inbound listener over SMTP and returns the desk's copy.
func (d *deskInstance) reply(t *testing.T, msg string) []byte {
	t.Helper()
	c, err := dialSMTP(d.inst.InboundAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, _ := filepath.Glob(filepath.Join(d.cfg.Inbound.Delivery.Maildir, "new", "*"))
	if res := send(c, "customer@example.com", []string{"support@bank.example"}, []byte(msg)); res.Err != nil || !strings.Contains(res.Reply, "queued as") {
		t.Fatalf("inbound SMTP: %v %q", res.Err, res.Reply)
	}
	files, err := waitForMaildirFiles(d.cfg.Inbound.Delivery.Maildir, len(before)+1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(before, f) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			return mime.ToCRLF(b)
		}
	}
	t.Fatal("no new message on the desk")
	return nil
}

// deskHeader parses the desk message's top-level header.
func deskHeader(t *testing.T, desk []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(desk))
	if err != nil {
		t.Fatalf("desk message: %v\n%s", err, desk)
	}
	return m.Header
}

const plainReply = "To: support@bank.example\r\nSubject: Re: Case 4711\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlease wire 9,800 EUR to my new account.\r\n"

// forgedResultsReachNoDesk sends an unsigned reply carrying a forged smime=pass under the given
// spelling of sealpost's authserv-id; the desk must see only sealpost's own smime=none.
func forgedResultsReachNoDesk(t *testing.T, authservID string) {
	d := newDeskInstance(t, false, nil)
	desk := d.reply(t, "Authentication-Results: "+authservID+"; smime=pass header.from=alice@example.com\r\nFrom: alice@example.com\r\n"+plainReply)
	if bytes.Contains(desk, []byte("smime=pass")) {
		t.Fatalf("the forged result reached the desk:\n%s", desk)
	}
	ars := deskHeader(t, desk)["Authentication-Results"]
	if len(ars) != 1 || !strings.HasPrefix(ars[0], "sealpost.bank.example; smime=none") {
		t.Fatalf("desk Authentication-Results %q, want sealpost's smime=none only", ars)
	}
}

func TestServeDeskForgedResultsLeadingComment(t *testing.T) {
	forgedResultsReachNoDesk(t, "(checked by the bank) sealpost.bank.example")
}

func TestServeDeskForgedResultsQuotedAuthServID(t *testing.T) {
	forgedResultsReachNoDesk(t, `"sealpost.bank.example"`)
}

func TestServeDeskForgedResultsTrailingDot(t *testing.T) {
	forgedResultsReachNoDesk(t, "sealpost.bank.example.")
}

func TestServeDeskForgedResultsUpperCase(t *testing.T) {
	forgedResultsReachNoDesk(t, "SEALPOST.BANK.EXAMPLE")
}

func TestServeDeskForgedResultsVersion(t *testing.T) {
	forgedResultsReachNoDesk(t, "sealpost.bank.example 1")
}

// TestServeDeskForgedFieldsInNestedParts: a validly signed reply (bob, unregistered) whose signed
// content carries forged Authentication-Results and Sealpost-* fields in a nested part and in an
// embedded message: none reaches the desk.
func TestServeDeskForgedFieldsInNestedParts(t *testing.T) {
	d := newDeskInstance(t, false, nil)
	entity := "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n" +
		"--b1\r\nAuthentication-Results: (x) sealpost.bank.example; smime=pass\r\nSealpost-Verdict: verified; signer=alice@example.com\r\n" +
		"Content-Type: text/plain\r\n\r\nWire 9,800 EUR.\r\n" +
		"--b1\r\nContent-Type: message/rfc822\r\n\r\nAuthentication-Results: \"sealpost.bank.example\"; smime=pass\r\nX-Sealpost-Verdict: verified\r\n" +
		"From: alice@example.com\r\nSubject: confirmation\r\n\r\nConfirmed.\r\n--b1--\r\n"
	desk := d.reply(t, d.signed(t, d.bob, "From: bob@example.com\r\nTo: support@bank.example\r\nSubject: Fwd: confirmation\r\n", entity))
	lower := bytes.ToLower(desk)
	if bytes.Contains(desk, []byte("smime=pass")) || bytes.Contains(lower, []byte("x-sealpost")) || bytes.Count(lower, []byte("sealpost-verdict:")) != 1 {
		t.Fatalf("forged fields reached the desk:\n%s", desk)
	}
	if !bytes.Contains(desk, []byte("Wire 9,800 EUR.")) || !bytes.Contains(desk, []byte("Confirmed.")) {
		t.Fatalf("the content did not reach the desk:\n%s", desk)
	}
}

// deskFrom returns the desk's From address and display name (decoded).
func deskFrom(t *testing.T, desk []byte) *mail.Address {
	t.Helper()
	list, err := deskHeader(t, desk).AddressList("From")
	if err != nil || len(list) != 1 {
		t.Fatalf("desk From: %v %v\n%s", list, err, desk)
	}
	return list[0]
}

// displayNameShowsNoAlice: bob signs a reply whose From shows Alice (written as from); the desk's
// From is bob's address and nowhere says Alice; the original From is kept in
// Sealpost-Original-From; Sender is not passed on.
func displayNameShowsNoAlice(t *testing.T, register bool, from string) {
	d := newDeskInstance(t, register, nil)
	desk := d.reply(t, d.signed(t, d.bob, "From: "+from+"\r\nSender: Alice <alice@example.com>\r\nTo: support@bank.example\r\nSubject: Re: Case 4711\r\n",
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nPlease send the card to my new address.\r\n"))
	h := deskHeader(t, desk)
	f := deskFrom(t, desk)
	decoded, _ := new(stdmime.WordDecoder).DecodeHeader(h.Get("From"))
	if f.Address != "bob@example.com" || strings.Contains(decoded, "Alice") {
		t.Errorf("desk From %q (%q <%s>)", h.Get("From"), f.Name, f.Address)
	}
	wantName := "[NOT VERIFIED] bob@example.com"
	if register {
		wantName = ""
	}
	if f.Name != wantName {
		t.Errorf("desk From display name %q, want %q", f.Name, wantName)
	}
	if h.Get("Sealpost-Original-From") == "" || h.Get("Sender") != "" {
		t.Errorf("Sealpost-Original-From %q, Sender %q", h.Get("Sealpost-Original-From"), h.Get("Sender"))
	}
}

func TestServeDeskFromAddressInDisplayNameUnregistered(t *testing.T) {
	displayNameShowsNoAlice(t, false, `"Alice <alice@example.com>" <bob@example.com>`)
}

func TestServeDeskFromAddressInDisplayNameVerified(t *testing.T) {
	displayNameShowsNoAlice(t, true, `"Alice <alice@example.com>" <bob@example.com>`)
}

func TestServeDeskFromEncodedDisplayName(t *testing.T) {
	displayNameShowsNoAlice(t, false, "=?utf-8?q?Alice_=3Calice=40example=2Ecom=3E?= <bob@example.com>")
}

func TestServeDeskFromComment(t *testing.T) {
	displayNameShowsNoAlice(t, true, "bob@example.com (Alice <alice@example.com>)")
}

// TestServeDeskFromEmbeddedMessage: bob signs a message/rfc822 wrapper whose embedded header
// says it is from Alice: the desk's copy of the embedded message does not show Alice as its sender.
func TestServeDeskFromEmbeddedMessage(t *testing.T) {
	d := newDeskInstance(t, false, nil)
	desk := d.reply(t, d.signed(t, d.bob, "From: bob@example.com\r\nTo: support@bank.example\r\nSubject: Re: Case 4711\r\n",
		"Content-Type: message/rfc822\r\n\r\nFrom: Alice <alice@example.com>\r\nSender: Alice <alice@example.com>\r\nSubject: Re: Case 4711\r\n\r\nWire 9,800 EUR.\r\n"))
	for _, line := range strings.Split(string(desk), "\r\n") {
		if (strings.HasPrefix(line, "From:") || strings.HasPrefix(line, "Sender:")) && strings.Contains(line, "Alice") {
			t.Errorf("the desk sees %q", line)
		}
	}
	if !bytes.Contains(desk, []byte(`From: "[NOT VERIFIED] alice@example.com" <alice@example.com>`)) {
		t.Errorf("embedded From not marked:\n%s", desk)
	}
}

// TestServeDeskSubjectTagAndBanner: a verified reply and an unsigned one, each with the verdict in
// its Subject and in a banner at the top of its text; an HTML alternative gets the banner too.
func TestServeDeskSubjectTagAndBanner(t *testing.T) {
	d := newDeskInstance(t, true, nil)
	desk := d.reply(t, d.signed(t, d.bob, "From: Bob <bob@example.com>\r\nTo: support@bank.example\r\nSubject: Re: Case 4711\r\n",
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nThe payee is right.\r\n"))
	if s := deskHeader(t, desk).Get("Subject"); s != "[verified] Re: Case 4711" {
		t.Errorf("verified: Subject %q", s)
	}
	_, body, _ := bytes.Cut(desk, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(body, []byte("sealpost: VERIFIED\r\nSigned by bob@example.com with the S/MIME certificate registered for that address.\r\n")) {
		t.Errorf("verified: no banner:\n%s", desk)
	}

	html := "From: Mallory <mallory@example.net>\r\nTo: support@bank.example\r\nSubject: [verified] Re: Case 4711\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nWire 9,800 EUR.\r\n" +
		"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Wire 9,800 EUR.</p></body></html>\r\n--a--\r\n"
	desk = d.reply(t, html)
	if s := deskHeader(t, desk).Get("Subject"); s != "[NOT VERIFIED] Re: Case 4711" {
		t.Errorf("unsigned: Subject %q", s)
	}
	for _, want := range []string{"\r\n\r\nsealpost: NOT VERIFIED (unsigned)\r\n", "<strong style=\"display:block !important\">sealpost: NOT VERIFIED (unsigned)</strong>"} {
		if !bytes.Contains(desk, []byte(want)) {
			t.Errorf("unsigned: no banner %q:\n%s", want, desk)
		}
	}
}

// TestServeDeskSubjectTagsConfigured: inbound.subject_tag_verified/_unverified set the tags; ""
// switches one off.
func TestServeDeskSubjectTagsConfigured(t *testing.T) {
	d := newDeskInstance(t, false, func(c *Config) {
		c.Inbound.SubjectTagVerified, c.Inbound.SubjectTagUnverified = "", "[UNGEPRÜFT]"
	})
	desk := d.reply(t, "From: bob@example.com\r\n"+plainReply)
	if s, _ := new(stdmime.WordDecoder).DecodeHeader(deskHeader(t, desk).Get("Subject")); s != "[UNGEPRÜFT] Re: Case 4711" {
		t.Errorf("Subject %q", s)
	}
	cfg, err := loadConfig(writeConfigFile(t, `{"inbound": {"subject_tag_verified": "", "subject_tag_unverified": "[NOT VERIFIED]"}}`), "")
	if err != nil || cfg.Inbound.SubjectTagVerified != "" || cfg.Inbound.SubjectTagUnverified != "[NOT VERIFIED]" {
		t.Errorf("loaded tags %q %q, %v", cfg.Inbound.SubjectTagVerified, cfg.Inbound.SubjectTagUnverified, err)
	}
	if _, err := loadConfig(writeConfigFile(t, `{"inbound": {"subject_tag_verified": "a\nb"}}`), ""); problemAt(err, "inbound.subject_tag_verified") == nil {
		t.Errorf("bad tag: %v", err)
	}
}

func writeConfigFile(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "sealpost.json")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestServeInboundEmptyMessageIs554: DATA with nothing and BDAT 0 LAST get a permanent 554 5.6.0
// (before: 250, and an empty message on the desk).
func TestServeInboundEmptyMessageIs554(t *testing.T) {
	d := newDeskInstance(t, false, nil)
	for _, c := range []struct {
		name string
		send []string // the last one's reply is the message's
	}{
		{"DATA with nothing", []string{"DATA", "."}},
		{"BDAT 0 LAST", []string{"BDAT 0 LAST"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", d.inst.InboundAddr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			tp := textproto.NewConn(conn)
			expect := func(cmd string, want int) string {
				t.Helper()
				if cmd != "" {
					if err := tp.PrintfLine("%s", cmd); err != nil {
						t.Fatal(err)
					}
				}
				code, msg, err := tp.ReadResponse(0)
				if want != 0 && code != want {
					t.Fatalf("%q: %d %s (%v), want %d", cmd, code, msg, err, want)
				}
				return msg
			}
			expect("", 220)
			expect("EHLO client.example", 250)
			expect("MAIL FROM:<bob@example.com>", 250)
			expect("RCPT TO:<support@bank.example>", 250)
			for i, cmd := range c.send {
				want := 0
				if cmd == "DATA" {
					want = 354
				}
				if i == len(c.send)-1 {
					want = 554
				}
				if msg := expect(cmd, want); i == len(c.send)-1 && !strings.HasPrefix(msg, "5.6.0") {
					t.Fatalf("%q: 554 %s, want 5.6.0", cmd, msg)
				}
			}
			expect("QUIT", 221)
		})
	}
	if files, _ := filepath.Glob(filepath.Join(d.cfg.Inbound.Delivery.Maildir, "new", "*")); len(files) != 0 {
		t.Fatalf("%d messages on the desk", len(files))
	}
}
