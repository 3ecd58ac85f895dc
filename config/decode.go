package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SyntaxError is a configuration file that is not one well-formed JSON value.
type SyntaxError struct {
	// File, when set, names the file in the message (compiler style, FILE:LINE:COLUMN).
	File string
	// Line and Column (in characters) are where the problem is, from 1; Offset is the same place
	// as a byte offset from 0.
	Line, Column int
	Offset       int
	// Problem says what was expected and what was found.
	Problem string
}

// Error returns "line L, column C: problem", or "FILE:L:C: problem" when File is set.
func (e *SyntaxError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Problem)
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Problem)
}

// Decode decodes the JSON document data into v, which must be a non-nil pointer (to a struct, for
// a configuration), more strictly than encoding/json:
//   - a key must equal a field's json tag exactly (encoding/json ignores case), and a key that
//     matches no field is an error naming the closest known key, or else all of them;
//   - a key may appear only once in an object (encoding/json keeps the last);
//   - the document is exactly one JSON value;
//   - a value of the wrong kind, or one the field's UnmarshalText or UnmarshalJSON refuses, is an
//     error at its path, in words ("100" is a string, want a number). null is allowed wherever
//     encoding/json allows it.
//
// A document that is not well-formed JSON gives one *SyntaxError and leaves v alone. Otherwise every
// problem is reported, each a *FieldError, joined; v then holds every value that was right (the wrong
// ones are left as they were), so the caller can validate it and report its problems too. Without
// problems, v is exactly what json.Unmarshal makes of data.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("config: Decode needs a non-nil pointer")
	}
	start, end, err := firstValue(data)
	if err != nil {
		return err
	}
	d := &decoder{data: data}
	d.value(start, end, rv.Type().Elem(), "", false)
	if err := json.Unmarshal(d.withoutWrong(start, end), v); err != nil && len(d.problems) == 0 {
		// Not expected: the walk checks what json.Unmarshal refuses.
		fe := &FieldError{Problem: err.Error(), Err: err}
		if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
			fe.Path, fe.Problem = te.Field, te.Value+" is not allowed here"
		}
		d.problems = append(d.problems, fe)
	}
	return errors.Join(d.problems...)
}

// firstValue returns the extent of the document's one JSON value, or the *SyntaxError that it has.
func firstValue(data []byte) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	var se *json.SyntaxError
	switch err := dec.Decode(&raw); {
	case err == io.EOF:
		return 0, 0, syntaxError(data, 0, "the file is empty: want a JSON object")
	case err == io.ErrUnexpectedEOF:
		return 0, 0, syntaxError(data, len(bytes.TrimRight(data, " \t\r\n")), "the file ends before the JSON value does")
	case errors.As(err, &se):
		pos := int(se.Offset) - 1 // Offset counts the offending byte
		return 0, 0, syntaxError(data, pos, inWords(se.Error(), data, pos))
	case err != nil:
		return 0, 0, err
	}
	end = int(dec.InputOffset())
	start = end - len(raw)
	if extra := end + len(data[end:]) - len(bytes.TrimLeft(data[end:], " \t\r\n")); extra < len(data) {
		if bytes.IndexByte([]byte(`{["-0123456789tfn`+"\""), data[extra]) >= 0 {
			return 0, 0, syntaxError(data, extra, "a second JSON value: the file must hold exactly one")
		}
		return 0, 0, syntaxError(data, extra, "found "+found(data, extra)+" after the end of the JSON value")
	}
	return start, end, nil
}

func syntaxError(data []byte, pos int, problem string) *SyntaxError {
	line, col := position(data, pos)
	return &SyntaxError{Line: line, Column: col, Offset: pos, Problem: problem}
}

// position returns the line and column (in characters, both from 1) of byte offset pos.
func position(data []byte, pos int) (line, col int) {
	before := data[:min(max(pos, 0), len(data))]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return 1 + bytes.Count(before, []byte("\n")), 1 + len([]rune(string(before[lineStart:])))
}

// inWords says what encoding/json's syntax error message means, in the operator's terms.
func inWords(msg string, data []byte, pos int) string {
	f := found(data, pos)
	trailingComma := pos < len(data) && (data[pos] == '}' || data[pos] == ']') &&
		bytes.HasSuffix(bytes.TrimRight(data[:pos], " \t\r\n"), []byte(","))
	unquoted := pos < len(data) && ('a' <= data[pos]|0x20 && data[pos]|0x20 <= 'z')
	switch {
	case trailingComma:
		return "found " + f + " after a comma: JSON allows no comma after the last element"
	case strings.HasSuffix(msg, "looking for beginning of value") && unquoted:
		return "expected a value, found " + f + " (strings need double quotes)"
	case strings.HasSuffix(msg, "looking for beginning of value"):
		return "expected a value, found " + f
	case strings.HasSuffix(msg, "looking for beginning of object key string"):
		return "expected a key in double quotes, found " + f
	case strings.HasSuffix(msg, "after object key"):
		return "expected ':' after the key, found " + f
	case strings.HasSuffix(msg, "after object key:value pair"):
		return "expected ',' or '}' after the value, found " + f
	case strings.HasSuffix(msg, "after array element"):
		return "expected ',' or ']' after the element, found " + f
	case strings.HasSuffix(msg, "in string literal") && pos < len(data) && data[pos] == '\n':
		return "the string is not closed before the end of the line"
	case strings.HasSuffix(msg, "in string literal"):
		return "a string cannot hold " + f + " (write it as an escape such as \\t)"
	case strings.HasSuffix(msg, "in string escape code"):
		return "found " + f + " after a backslash: not an escape (write a backslash as \\\\)"
	case strings.Contains(msg, "in literal"):
		return "expected true, false or null, found " + f + " (strings need double quotes)"
	case strings.Contains(msg, "numeric literal"):
		return "malformed number, found " + f
	}
	return msg
}

// found describes the character at pos.
func found(data []byte, pos int) string {
	if pos >= len(data) {
		return "the end of the file"
	}
	r, _ := utf8.DecodeRune(data[pos:])
	switch {
	case r == '\n':
		return "the end of the line"
	case r == '\uFEFF':
		return "a byte order mark (save the file without one)"
	case !unicode.IsPrint(r) || r == utf8.RuneError:
		return fmt.Sprintf("U+%04X", r)
	}
	return "'" + string(r) + "'"
}

// decoder walks a well-formed document against the type it is decoded into.
type decoder struct {
	data     []byte
	problems []error
	wrong    [][2]int // extents of values with a problem, which the real decoding skips
}

func (d *decoder) fail(start, end int, path, problem string) {
	d.problems = append(d.problems, &FieldError{Path: path, Problem: problem})
	d.wrong = append(d.wrong, [2]int{start, end})
}

// withoutWrong returns the document with each wrong value replaced by null, which encoding/json
// decodes as "leave it alone" (the walk reports a null it would refuse, and json.Unmarshal then
// fails too, which only costs the partial result).
func (d *decoder) withoutWrong(start, end int) []byte {
	if len(d.wrong) == 0 {
		return d.data[start:end]
	}
	slices.SortFunc(d.wrong, func(a, b [2]int) int { return a[0] - b[0] })
	var b []byte
	at := start
	for _, w := range d.wrong {
		b = append(append(b, d.data[at:w[0]]...), "null"...)
		at = w[1]
	}
	return append(b, d.data[at:end]...)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodesItself reports whether t, or a pointer to it, has its own UnmarshalJSON or UnmarshalText.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

// value checks data[start:end], decoded into a t at path. quoted is the field's ",string" option.
func (d *decoder) value(start, end int, t reflect.Type, path string, quoted bool) {
	raw := d.data[start:end]
	if quoted || raw[0] == 'n' || decodesItself(t) {
		d.leaf(start, end, t, path, quoted)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		d.value(start, end, t.Elem(), path, false)
	case reflect.Struct:
		if d.kind(start, end, t, path, '{') {
			fs := fields(t)
			d.object(start, end, path, func(key string) (field, string) {
				if i := slices.IndexFunc(fs, func(f field) bool { return f.name == key }); i >= 0 {
					return fs[i], ""
				}
				return field{}, unknownKey(key, fs)
			})
		}
	case reflect.Map:
		if d.kind(start, end, t, path, '{') {
			d.object(start, end, path, func(key string) (field, string) { return field{typ: t.Elem()}, keyProblem(key, t.Key()) })
		}
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			d.leaf(start, end, t, path, false) // []byte is base64
		} else if d.kind(start, end, t, path, '[') {
			d.array(start, end, t, path)
		}
	default:
		d.leaf(start, end, t, path, false)
	}
}

// kind reports whether the value starts with open, and reports it when it does not.
func (d *decoder) kind(start, end int, t reflect.Type, path string, open byte) bool {
	if d.data[start] == open {
		return true
	}
	d.fail(start, end, path, mismatch(d.data[start:end], t, path))
	return false
}

// object checks the members of the object data[start:end]: each key once, each key allowed (lookup
// returns its field, or what is wrong with the key), and each value.
func (d *decoder) object(start, end int, path string, lookup func(key string) (field, string)) {
	dec := json.NewDecoder(bytes.NewReader(d.data[start:end]))
	dec.Token() // {
	seen := map[string]int{}
	for dec.More() {
		keyAt := start + int(dec.InputOffset())
		keyAt += len(d.data[keyAt:]) - len(bytes.TrimLeft(d.data[keyAt:], " \t\r\n,"))
		tok, err := dec.Token()
		var raw json.RawMessage
		if err != nil || dec.Decode(&raw) != nil {
			return // not reached: the document is well-formed
		}
		key, _ := tok.(string)
		vend := start + int(dec.InputOffset())
		vstart := vend - len(raw)
		p := MapKey(path, key)
		if first, dup := seen[key]; dup {
			line, col := position(d.data, first)
			d.problems = append(d.problems, &FieldError{Path: p,
				Problem: fmt.Sprintf("set twice in one object (first at line %d, column %d): keep one", line, col)})
		}
		seen[key] = keyAt
		f, problem := lookup(key)
		if problem != "" {
			// Decoded as null, so that encoding/json, which ignores case, does not put it in a field.
			d.fail(vstart, vend, p, problem)
			continue
		}
		d.value(vstart, vend, f.typ, p, f.quoted)
	}
}

// array checks the elements of the list data[start:end] against t's element type.
func (d *decoder) array(start, end int, t reflect.Type, path string) {
	dec := json.NewDecoder(bytes.NewReader(d.data[start:end]))
	dec.Token() // [
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			return // not reached: the document is well-formed
		}
		if t.Kind() == reflect.Array && i >= t.Len() {
			continue // encoding/json drops what does not fit a fixed-size array
		}
		vend := start + int(dec.InputOffset())
		d.value(vend-len(raw), vend, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false)
	}
}

// keyProblem says why encoding/json refuses key as a map key of type t, or returns "".
func keyProblem(key string, t reflect.Type) string {
	if t.Kind() == reflect.String && !decodesItself(t) {
		return ""
	}
	k, _ := json.Marshal(key)
	m := reflect.New(reflect.MapOf(t, reflect.TypeFor[any]()))
	err := json.Unmarshal(append(append([]byte("{"), k...), ":null}"...), m.Interface())
	if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
		return "the key is not " + want(t)
	} else if err != nil {
		return err.Error() // the key type's UnmarshalText refused it, in its words
	}
	return ""
}

// leaf asks encoding/json whether it takes the value as a t (a field with the ",string" option when
// quoted), and reports its refusal in words.
func (d *decoder) leaf(start, end int, t reflect.Type, path string, quoted bool) {
	raw := d.data[start:end]
	var err error
	if quoted {
		st := reflect.StructOf([]reflect.StructField{{Name: "V", Type: t, Tag: `json:"v,string"`}})
		err = json.Unmarshal(append(append([]byte(`{"v":`), raw...), '}'), reflect.New(st).Interface())
	} else {
		err = json.Unmarshal(raw, reflect.New(t).Interface())
	}
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return
	case quoted:
		d.fail(start, end, path, fmt.Sprintf("%s, want %s written as a string (e.g. \"1\")", got(raw), want(t)))
	case errors.As(err, &te):
		d.fail(start, end, path, mismatch(raw, t, path))
	default: // the type's own UnmarshalText or UnmarshalJSON refused it, in its words
		d.fail(start, end, path, err.Error())
	}
}
