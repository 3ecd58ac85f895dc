package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// mismatch says why raw, which encoding/json refuses as a t, is wrong.
func mismatch(raw []byte, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer && !decodesItself(t) {
		t = t.Elem()
	}
	if (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') && !decodesItself(t) {
		if p := numberProblem(string(raw), t); p != "" {
			return p
		}
	}
	if path == "" {
		return "the file must hold " + want(t) + ", not " + noun(raw)
	}
	return got(raw) + ", want " + want(t)
}

// got describes a JSON value: `"100" is a string`, `5 is a number`, `got a list`.
func got(raw []byte) string {
	s := string(raw)
	switch raw[0] {
	case '{', '[':
		return "got " + noun(raw)
	case 'n':
		return "null is not allowed"
	case '"':
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:36]) + `…"`
		}
	}
	return s + " is " + noun(raw)
}

// noun names the kind of a JSON value.
func noun(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// want describes what t is written as.
func want(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration in quotes, e.g. "5m"`
	case t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler):
		return "another value"
	case t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler):
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	case reflect.Array:
		return "a list"
	case reflect.Pointer:
		return want(t.Elem())
	}
	return "another value"
}

// numberProblem says why the number n does not fit t, or returns "" when t is not a number.
func numberProblem(n string, t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if strings.ContainsAny(n, ".eE") {
			return n + " is not a whole number (write it without a fraction or exponent)"
		}
		bits := t.Bits()
		return fmt.Sprintf("%s is out of range (want %d to %d)", n, -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if strings.ContainsAny(n, ".eE") {
			return n + " is not a whole number (write it without a fraction or exponent)"
		}
		if strings.HasPrefix(n, "-") {
			return n + " is negative, want 0 or more"
		}
		return fmt.Sprintf("%s is out of range (want 0 to %d)", n, uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return n + " is out of range"
	}
	return ""
}

// unknownKey says that key is not one of known, naming the closest known key if one is near
// enough to be a typo (or differs only in case), else all of them.
func unknownKey(key string, known []field) string {
	if len(known) == 0 {
		return "unknown key (nothing can be set here)"
	}
	best, bestDist := "", len(key)+1
	for _, f := range known {
		if len(key) > 64 {
			break // no typo of a key is this long, and distance is quadratic
		}
		if d := distance(strings.ToLower(key), strings.ToLower(f.name)); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	if bestDist <= max(1, utf8.RuneCountInString(key)/4) {
		return "unknown key (did you mean " + strconv.Quote(best) + "?)"
	}
	names := make([]string, len(known))
	for i, f := range known {
		names[i] = f.name
	}
	return "unknown key (known keys: " + strings.Join(names, ", ") + ")"
}

// distance is the optimal string alignment distance of a and b: the edits (insert, delete,
// replace, swap two neighbours) that turn a into b.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}
