package evidence

import (
	"testing"
)

// FuzzRecordLine: whatever a line of the log holds, Decode and chainFields never panic, and when
// both read it they agree on its place in the chain (verify reads seq and prev the fast way).
func FuzzRecordLine(f *testing.F) {
	r := outboundRecord(1)
	r.Prev = zeroPrev
	good, _ := encode(r)
	f.Add(good)
	f.Add([]byte(`{"seq":3,`))
	f.Add([]byte(`{"seq":01,"prev":"` + zeroPrev + `","kind":"action","action":{}}`))
	f.Add([]byte(`{"seq":1,"prev":"` + zeroPrev + `","time":"2026-01-01T00:00:00Z","node":"a","kind":"delivery","delivery":{},"inbound":{}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := Decode(line)
		seq, prev, ok := chainFields(line)
		if err == nil && ok && (rec.Seq != seq || rec.Prev != string(prev)) {
			t.Fatalf("Decode says seq %d prev %s, chainFields %d %s", rec.Seq, rec.Prev, seq, prev)
		}
	})
}

// FuzzCheckpoint: a checkpoint line of any content never panics the reader or the head parser,
// and a head that parses prints back to the same text.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"text":"sealpost evidence log checkpoint\nnode: a\nsize: 1\nroot: ` + zeroPrev + `\nlast: ` + zeroPrev + `\ntime: 2026-01-01T00:00:00Z\n","signature":"AA=="}`))
	f.Add([]byte(`{"frontier":{"size":3,"nodes":["` + zeroPrev + `"]}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		cp, err := decodeCheckpoint(line)
		if err != nil {
			return
		}
		_ = cp.Frontier.valid()
		h, err := ParseHead(cp.Text)
		if err == nil && h.Text() != cp.Text {
			// Only a canonical time prints back the same; the signature is over the text as kept.
			if _, err := ParseHead(h.Text()); err != nil {
				t.Fatalf("a head that parsed prints as unparsable text: %v", err)
			}
		}
	})
}
