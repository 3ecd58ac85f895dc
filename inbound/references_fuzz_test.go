package inbound

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/mime"
)

// FuzzReferencedIDs: In-Reply-To and References as any sender writes them. It never panics,
// returns at most 50 IDs, each one "<...>" without white space or angle brackets inside, and
// each found in the header as written.
func FuzzReferencedIDs(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.eml"))
	for _, name := range files[:min(len(files), 5)] {
		if b, err := os.ReadFile(name); err == nil {
			if i := bytes.Index(b, []byte("\r\n\r\n")); i > 0 {
				f.Add(b[:i+4])
			}
		}
	}
	f.Add([]byte("In-Reply-To: <a@b>\r\nReferences: <c@d> <e@f>\r\n\t<g@h>\r\n\r\n"))
	f.Add([]byte("References: " + strings.Repeat("<x@y> ", 60) + "\r\n\r\n"))
	f.Add([]byte("In-Reply-To: <<a@b>> <a b@c> <" + strings.Repeat("a", 300) + ">\r\n\r\n"))
	f.Add([]byte("in-reply-to: (comment <x@y>) <real@id>\r\n\r\n"))
	valid := regexp.MustCompile(`^<[^<>\s]{1,250}>$`)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, _, err := mime.SplitEntity(mime.ToCRLF(b))
		if err != nil {
			return
		}
		ids := referencedIDs(h)
		if len(ids) > 50 {
			t.Fatalf("%d IDs", len(ids))
		}
		var values strings.Builder
		for _, fl := range h {
			if strings.EqualFold(fl.Name, "In-Reply-To") || strings.EqualFold(fl.Name, "References") {
				values.WriteString(fl.Value() + "\n")
			}
		}
		for _, id := range ids {
			if !valid.MatchString(id) || !strings.Contains(values.String(), id) {
				t.Fatalf("ID %q is not one of the header's: %q", id, values.String())
			}
		}
	})
}
