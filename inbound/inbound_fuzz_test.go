package inbound

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/mime"
)

// FuzzEvaluate runs the whole inbound pipeline (S/MIME and OpenPGP inspection, From binding,
// registrations, threads, the desk's message) on arbitrary input, seeded with the committed
// corpus. It must never panic, and whatever it accepts must give the desk a parseable message
// with exactly one verdict of ours.
func FuzzEvaluate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.eml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("From: a@example.com\r\n\r\nhello\r\n"))
	f.Add([]byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n"))
	env := newCorpusEnv(f, Config{})
	arrival := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := env.ib.Evaluate(context.Background(), msg, arrival)
		if err != nil {
			return
		}
		h, _, err := mime.SplitEntity(res.Message)
		if err != nil {
			t.Fatalf("desk message does not parse: %v", err)
		}
		if h.Count("Sealpost-Verdict") != 1 {
			t.Fatalf("%d Sealpost-Verdict fields", h.Count("Sealpost-Verdict"))
		}
	})
}
