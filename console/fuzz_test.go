package console

import (
	"html/template"
	"strings"
	"testing"
)

// FuzzShowMessage: any bytes as a held message are shown without a panic, as printable text in
// which nothing is markup once the page escapes it.
func FuzzShowMessage(f *testing.F) {
	for _, seed := range []string{
		"From: a@example.com\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nhello\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPHNjcmlwdD4=\r\n--b--\r\n",
		"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =\r\n\u202e\r\n",
		"Subject: \u202egnp.exe\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := showMessage(msg)
		if err != nil {
			return
		}
		for _, fl := range m.Fields {
			if strings.ContainsAny(fl.Value, "\r\n\u202e\u200b") {
				t.Fatalf("field %s shown with a line break or format character: %q", fl.Name, fl.Value)
			}
		}
		for _, p := range m.Parts {
			if strings.ContainsRune(p.Text, '\u202e') {
				t.Fatalf("a part shown with a bidi override: %q", p.Text)
			}
			var b strings.Builder
			template.Must(template.New("").Parse(`<pre>{{.}}</pre>`)).Execute(&b, p.Text)
			if strings.Count(b.String(), "<") != 2 {
				t.Fatalf("the shown text makes markup: %q", b.String())
			}
		}
	})
}

// FuzzVerifyPassword: a stored hash of any shape is refused or checked, never a panic, and
// never asks argon2 for more than the bounds allow.
func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword("correct horse battery")
	f.Add(string(h), "correct horse battery")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$AAAA$AAAA", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=0$$", "")
	f.Fuzz(func(t *testing.T, hash, password string) {
		VerifyPassword([]byte(hash), password)
		_ = cookieHash(password)
	})
}
