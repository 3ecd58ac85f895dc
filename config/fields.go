package config

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"unicode"
)

// field is a key of a JSON object decoded into a struct.
type field struct {
	name   string
	typ    reflect.Type
	quoted bool  // the ",string" option
	index  []int // for the order of the keys: declaration order, embedded fields in place
}

// fields returns the keys of struct type t by encoding/json's rules: a field's key is its tag's
// name or else its Go name; "-" and unexported fields have none; an untagged embedded struct lends
// its keys, each of which loses to a shallower field of the same key, and two of one depth cancel
// out unless exactly one of them is tagged.
func fields(t reflect.Type) []field {
	type candidate struct {
		field
		tagged bool
	}
	var all []candidate
	visited := map[reflect.Type]bool{}
	type level struct {
		t     reflect.Type
		index []int
	}
	for current := []level{{t, nil}}; len(current) > 0; {
		var next []level
		for _, l := range current {
			if visited[l.t] {
				continue
			}
			visited[l.t] = true
			for i := range l.t.NumField() {
				sf := l.t.Field(i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if sf.Anonymous && !sf.IsExported() && ft.Kind() != reflect.Struct || !sf.Anonymous && !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTag(name) {
					name = ""
				}
				index := append(slices.Clone(l.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, level{ft, index})
					continue
				}
				quoted := false
				for o := range strings.SplitSeq(opts, ",") {
					quoted = quoted || o == "string"
				}
				switch ft.Kind() {
				case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
					reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
					reflect.Float32, reflect.Float64, reflect.String:
				default:
					quoted = false
				}
				all = append(all, candidate{field{cmp.Or(name, sf.Name), sf.Type, quoted, index}, name != ""})
			}
		}
		current = next
	}
	// Resolve each key: the shallowest fields win; of several, the one tagged; else none.
	slices.SortStableFunc(all, func(a, b candidate) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(len(a.index), len(b.index)), cmp.Compare(boolInt(b.tagged), boolInt(a.tagged)))
	})
	var out []field
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		dominant := all[i]
		if j == i+1 || len(all[i+1].index) > len(dominant.index) || dominant.tagged && !all[i+1].tagged {
			out = append(out, dominant.field)
		}
		i = j
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// validTag is encoding/json's rule for a usable name in a json tag.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}
