package inbound

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// deskPart is one entity of a desk message as a mail client sees it, parsed with the standard
// library (not with the code that built it).
type deskPart struct {
	header   textproto.MIMEHeader
	body     []byte // transfer-decoded (leaf parts only)
	mt       string
	embedded bool // the header of an embedded message (message/rfc822)
	root     bool
	depth    int
}

// walkDesk calls fn for the root, every part and every embedded message of msg, in order. It
// reports whether the whole message parsed.
func walkDesk(msg []byte, fn func(p deskPart)) bool {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return false
	}
	return walkEntity(textproto.MIMEHeader(m.Header), m.Body, false, true, 0, fn)
}

func walkEntity(h textproto.MIMEHeader, body io.Reader, embedded, root bool, depth int, fn func(deskPart)) bool {
	if depth > 40 {
		return false
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if h.Get("Content-Type") == "" {
		mt, err = "text/plain", nil
	}
	if err != nil {
		mt = "application/octet-stream"
	}
	p := deskPart{header: h, mt: mt, embedded: embedded, root: root, depth: depth}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		fn(p)
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return true
			}
			if err != nil {
				return false
			}
			if !walkEntity(part.Header, part, false, false, depth+1, fn) {
				return false
			}
		}
	case mt == "message/rfc822" || mt == "message/global":
		fn(p)
		m, err := mail.ReadMessage(r)
		if err != nil {
			return false
		}
		return walkEntity(textproto.MIMEHeader(m.Header), m.Body, true, false, depth+1, fn)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return false
	}
	p.body = b
	fn(p)
	return true
}

// checkDeskInvariants asserts what every desk message must satisfy, whatever was sent:
//   - one Authentication-Results of ours (the verdict's) and one Sealpost-Verdict, at the top;
//     no other field anywhere that claims to be sealpost's (only Sealpost-Original-From, written
//     by sealpost, in embedded messages), no Authentication-Results anywhere naming us;
//   - no Sender at the top or in embedded messages; the From at the top is the verified signer
//     with no display name of the sender's, or, unverified, every address marked; embedded
//     From addresses likewise;
//   - the Subject starts with the verdict's tag (when tags are on);
//   - the first text/plain part a client shows starts with the banner's title.
func checkDeskInvariants(t *testing.T, msg []byte, v *Verdict, cfg Config, registeredName string) {
	t.Helper()
	mark := cfg.SubjectTagUnverified
	if mark == "" {
		mark = DefaultSubjectTagUnverified
	}
	ours := 0
	bannerSeen := false
	firstText := true
	checkFrom := func(where string, h textproto.MIMEHeader, trustedAddr string) {
		for _, val := range h.Values("From") {
			list, err := mail.ParseAddressList(val)
			if err != nil {
				t.Errorf("%s: From %q does not parse: %v", where, val, err)
				continue
			}
			for _, a := range list {
				switch {
				case trustedAddr != "" && len(list) == 1 && strings.EqualFold(a.Address, trustedAddr):
					if a.Name != registeredName {
						t.Errorf("%s: verified From %q has display name %q, want %q", where, val, a.Name, registeredName)
					}
				case a.Name != mark+" "+a.Address:
					t.Errorf("%s: From %q: display name %q is not %q", where, val, a.Name, mark+" "+a.Address)
				}
			}
		}
	}
	ok := walkDesk(msg, func(p deskPart) {
		where := fmt.Sprintf("part at depth %d", p.depth)
		if p.root {
			where = "desk header"
		} else if p.embedded {
			where = "embedded message header"
		}
		for name, vals := range p.header {
			for _, val := range vals {
				switch {
				case p.root && name == "Authentication-Results" && val == v.AuthenticationResults(cfg.AuthServID):
					ours++
				case isAuthResultsField(name) && claimsAuthServID(val, cfg.AuthServID):
					t.Errorf("%s: %s: %s claims to be ours", where, name, val)
				case p.root && name == "Sealpost-Verdict":
					if val != v.Header() {
						t.Errorf("Sealpost-Verdict %q, verdict %q", val, v.Header())
					}
				case (p.root || p.embedded) && name == "Sealpost-Original-From":
				case isSealpostField(name), strings.HasPrefix(strings.ToLower(name), "corpus-"):
					t.Errorf("%s carries %s: %s", where, name, val)
				case (p.root || p.embedded) && name == "Sender":
					t.Errorf("%s carries Sender: %s", where, val)
				}
			}
		}
		switch {
		case p.root:
			if n := len(p.header.Values("From")); n > 1 {
				t.Errorf("desk header has %d From fields", n)
			}
			trusted := ""
			if v.Trusted() {
				trusted = v.Signer
				if len(p.header.Values("From")) != 1 {
					t.Errorf("verified message without its From")
				}
			}
			checkFrom(where, p.header, trusted)
			tag := cfg.SubjectTagUnverified
			if v.Trusted() {
				tag = cfg.SubjectTagVerified
			}
			subject, _ := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
			if tag != "" && (len(p.header.Values("Subject")) != 1 || !strings.HasPrefix(subject, tag)) {
				t.Errorf("Subject %q (%d fields) does not start with %q", subject, len(p.header.Values("Subject")), tag)
			}
			other := cfg.SubjectTagVerified
			if v.Trusted() {
				other = cfg.SubjectTagUnverified
			}
			if other != "" && strings.Contains(strings.ToLower(subject), strings.ToLower(other)) {
				t.Errorf("Subject %q carries the other verdict's tag %q", subject, other)
			}
		case p.embedded:
			trusted := ""
			if v.Trusted() {
				trusted = v.Signer
			}
			checkFrom(where, p.header, trusted)
		}
		if p.mt == "text/plain" && p.body != nil && firstText {
			firstText = false
			bannerSeen = bytes.HasPrefix(p.body, []byte(newBanner(v).Title+"\r\n"))
		}
	})
	if !ok {
		t.Errorf("the desk message does not parse as MIME:\n%s", msg)
		return
	}
	if ours != 1 {
		t.Errorf("%d Authentication-Results of ours, want 1", ours)
	}
	if !bannerSeen {
		t.Errorf("the first text/plain part does not start with the banner %q:\n%s", newBanner(v).Title, msg)
	}
}
