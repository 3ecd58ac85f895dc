package mime

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const nestedMsg = "From: a@example.com\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n  folded\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
	"preamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
	"--outer\r\nno colon here\r\n\r\nbroken\r\n" +
	"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--inner--\r\n" +
	"--outer--\r\nepilogue\r\n"

func TestParseKeepsRawBytes(t *testing.T) {
	e, err := Parse([]byte(nestedMsg))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	e.Encode(&b)
	if b.String() != nestedMsg {
		t.Fatalf("re-emitted\n%q\nwant\n%q", b.String(), nestedMsg)
	}
	if got := string(e.Header[1].Raw); got != "Subject: =?utf-8?q?caf=C3=A9?=\r\n  folded\r\n" {
		t.Fatalf("folded field %q", got)
	}
	if e.MediaType != "multipart/mixed" || len(e.Parts) != 3 || e.PartsErr != nil {
		t.Fatalf("root %s, %d parts, %v", e.MediaType, len(e.Parts), e.PartsErr)
	}
	if p := e.Parts[0]; string(p.Body) != "hello" || p.MediaType != "text/plain" || string(p.Raw) != "Content-Type: text/plain\r\n\r\nhello" {
		t.Fatalf("first part %+v", p)
	}
	if p := e.Parts[1]; p.Err == nil || !errors.Is(p.Err, ErrMalformed) || p.Header != nil || string(p.Raw) != "no colon here\r\n\r\nbroken" {
		t.Fatalf("broken part kept as %+v", p)
	}
	if p := e.Parts[2]; len(p.Parts) != 1 || p.Parts[0].MediaType != "text/html" {
		t.Fatalf("nested multipart %+v", p)
	}
}

func TestParseRootErrors(t *testing.T) {
	if _, err := Parse([]byte("no colon\r\n\r\nbody")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("header without a field name: %v", err)
	}
	e, err := Parse([]byte("Content-Type: multipart/mixed; boundary=\"\r\n\r\nbody"))
	if err != nil || e.Err == nil {
		t.Fatalf("a bad Content-Type is the entity's Err, not Parse's: %v, %v", err, e.Err)
	}
	e, err = Parse([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno close\r\n"))
	if err != nil || e.PartsErr == nil || e.Parts != nil {
		t.Fatalf("an unclosed multipart: %v, %v", err, e.PartsErr)
	}
	e, err = Parse(nil)
	if err != nil || e.Header == nil || len(e.Header) != 0 || e.MediaType != "text/plain" {
		t.Fatalf("empty input: %+v, %v", e, err)
	}
}

// nestedMultiparts is n multiparts one inside the other around a text part.
func nestedMultiparts(n int) []byte {
	var b strings.Builder
	for i := range n {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "\r\n\r\n--b" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nleaf\r\n")
	for i := n - 1; i >= 0; i-- {
		b.WriteString("--b" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "--\r\n")
	}
	return []byte(b.String())
}

func TestParseBounds(t *testing.T) {
	e, err := Parse(nestedMultiparts(MaxEntityDepth + 5))
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for ; e.Parts != nil; depth++ {
		e = e.Parts[0]
	}
	if depth != MaxEntityDepth || !errors.Is(e.PartsErr, ErrTooDeep) {
		t.Fatalf("split to depth %d (%v), want %d and ErrTooDeep", depth, e.PartsErr, MaxEntityDepth)
	}
	many := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", MaxEntities) + "--b--\r\n"
	e, err = Parse([]byte(many))
	if err != nil || !errors.Is(e.PartsErr, ErrTooMany) || e.Parts != nil {
		t.Fatalf("%d parts: %v, %v", MaxEntities, err, e.PartsErr)
	}
}

// toyLayer recognises application/x-toy; its body is the inner entity. signed says x-toy-signed.
type toyLayer struct{ roots []bool }

func (l *toyLayer) Recognise(e *Entity) bool {
	return strings.HasPrefix(e.MediaType, "application/x-toy")
}

func (l *toyLayer) Unwrap(e *Entity, root bool) (Step, error) {
	l.roots = append(l.roots, root)
	inner, err := Parse(e.Body)
	return Step{Inner: inner, Layers: []string{e.MediaType}, Signed: e.MediaType == "application/x-toy-signed"}, err
}

// otherLayer recognises application/x-other the same way: a second protocol.
type otherLayer struct{ toyLayer }

func (l *otherLayer) Recognise(e *Entity) bool { return e.MediaType == "application/x-other" }

func TestWalkNestsLayersOfAnyProtocol(t *testing.T) {
	msg := "Content-Type: application/x-toy\r\n\r\nContent-Type: application/x-other\r\n\r\n" +
		"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nunsigned\r\n" +
		"--m\r\nContent-Type: application/x-toy-signed\r\n\r\nContent-Type: text/plain\r\n\r\nsigned\r\n--m--\r\n"
	root, err := Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	toy, other := &toyLayer{}, &otherLayer{}
	w, err := Walk(root, 8, toy, other)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.Content.Body) != "signed" || w.Root {
		t.Fatalf("content %q root %v", w.Content.Body, w.Root)
	}
	if got := strings.Join(w.Layers(), ","); got != "application/x-toy,application/x-other,application/x-toy-signed" {
		t.Fatalf("layers %s", got)
	}
	if w.Steps[0].By != Layer(toy) || w.Steps[1].By != Layer(other) || !w.Steps[2].Signed || w.Steps[1].Signed {
		t.Fatalf("steps %+v", w.Steps)
	}
	if len(toy.roots) != 2 || !toy.roots[0] || toy.roots[1] {
		t.Fatalf("root flags seen by the layer: %v", toy.roots)
	}
}

func TestWalkStopsAtUnrecognised(t *testing.T) {
	for name, msg := range map[string]string{
		"unknown multipart/signed": "Content-Type: multipart/signed; protocol=x; boundary=s\r\n\r\n--s\r\nContent-Type: application/x-toy\r\n\r\n\r\n--s--\r\n",
		"no protected part":        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nplain\r\n--m--\r\n",
		"unparsable part skipped":  "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nbad\r\n\r\n--m--\r\n",
	} {
		root, err := Parse([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		w, err := Walk(root, 8, &toyLayer{})
		if err != nil || w.Content != root || !w.Root || len(w.Steps) != 0 {
			t.Fatalf("%s: %+v, %v", name, w, err)
		}
	}
}

func TestWalkErrors(t *testing.T) {
	deep := []byte(strings.Repeat("Content-Type: application/x-toy\r\n\r\n", 9) + "\r\nx")
	root, _ := Parse(deep)
	if _, err := Walk(root, 8, &toyLayer{}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("9 layers: %v", err)
	}
	root, _ = Parse(nestedMultiparts(9))
	if _, err := Walk(root, 8, &toyLayer{}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("9 multiparts: %v", err)
	}
	root, _ = Parse([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n"))
	if _, err := Walk(root, 8, &toyLayer{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unclosed multipart the walk must read: %v", err)
	}
	root, _ = Parse([]byte("Content-Type: application/x-toy\r\n\r\nno colon\r\n\r\n"))
	if _, err := Walk(root, 8, &toyLayer{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unparsable inner entity: %v", err)
	}
}

// FuzzParse: no input panics; every entity the tree holds is a sub-slice of the input; an entity
// whose header ends with a blank line re-emits its Raw byte for byte; and the walker, with a layer
// that unwraps bodies, terminates without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(nestedMsg))
	f.Add(nestedMultiparts(40))
	f.Add([]byte("Content-Type: application/x-toy\r\n\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nx\r\n--m--\r\n"))
	f.Add([]byte("\r\n"))
	for _, dir := range []string{"good", "hostile"} {
		files, _ := filepath.Glob(filepath.Join("..", "testdata", "inbound", dir, "*"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(ToCRLF(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		root, err := Parse(msg)
		if err != nil {
			return
		}
		var check func(e *Entity)
		check = func(e *Entity) {
			if len(e.Raw) > 0 && !within(msg, e.Raw) {
				t.Fatalf("entity is not a sub-slice of the input")
			}
			if e.Err == nil && e.Body != nil {
				var b bytes.Buffer
				e.Encode(&b)
				if !bytes.Equal(b.Bytes(), e.Raw) {
					t.Fatalf("re-emitted %q, parsed %q", b.Bytes(), e.Raw)
				}
			}
			for _, p := range e.Parts {
				check(p)
			}
		}
		check(root)
		_, _ = Walk(root, 8, &toyLayer{})
	})
}

// within reports whether sub lies inside b's memory.
func within(b, sub []byte) bool {
	for i := range b {
		if &b[i] == &sub[0] {
			return len(b)-i >= len(sub)
		}
	}
	return false
}
