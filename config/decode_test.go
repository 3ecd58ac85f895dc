package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The types below have the shapes of sealpost's configuration: nested sections, an embedded
// struct with its keys inline, maps of objects and of strings, lists, pointers, durations, "-".
type (
	testFile struct {
		Data     string            `json:"data"`
		SMTP     testListener      `json:"smtp"`
		Queue    testQueue         `json:"queue"`
		Gateway  testGateway       `json:"gateway"`
		Inbound  testInbound       `json:"inbound"`
		HSM      *testHSM          `json:"hsm"`
		Limits   [2]int            `json:"limits"`
		Extra    map[string]string `json:"extra"`
		Internal int               `json:"-"`
		Retries  int8              `json:"retries"`
		Size     uint16            `json:"size"`
		Ratio    float32           `json:"ratio"`
		Count    int               `json:"count,string"`
		Any      any               `json:"any"`
		Method   testMethod        `json:"method"`
		Ports    map[int]string    `json:"ports"`
		Classes  map[testClass]int `json:"classes"`
	}
	// testMethod decodes itself from JSON.
	testMethod string
	// testClass is a map key that decodes itself from text.
	testClass    string
	testListener struct {
		Addr          string            `json:"addr"`
		MaxRecipients int               `json:"max_recipients"`
		Users         map[string]string `json:"users"`
		ReadTimeout   Duration          `json:"read_timeout"`
	}
	testQueue struct {
		Workers    int      `json:"workers"`
		MinBackoff Duration `json:"min_backoff"`
	}
	testGateway struct {
		Rules    []testRule            `json:"rules"`
		Policies map[string]testPolicy `json:"policies"`
	}
	testRule struct {
		Sender string `json:"sender"`
		Class  string `json:"class"`
	}
	testPolicy struct {
		Encryption string    `json:"encryption"`
		Lifetime   *Duration `json:"lifetime"`
	}
	testEmbedded struct {
		SupportAddresses []string `json:"support_addresses"`
		OnFailed         string   `json:"on_failed"`
	}
	testInbound struct {
		Enabled bool `json:"enabled"`
		testEmbedded
		Delivery string `json:"delivery"`
	}
	testHSM struct {
		Module string `json:"module"`
	}
)

func (m *testMethod) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"smime"`, `"pgp"`, "null":
		*m = testMethod(b)
		return nil
	}
	return errors.New("want smime or pgp")
}

func (c *testClass) UnmarshalText(b []byte) error {
	if string(b) != "otp" && string(b) != "statement" {
		return errors.New("not a class")
	}
	*c = testClass(b)
	return nil
}

// problem decodes doc into a testFile and returns the *FieldError at path, failing when there is none.
func problem(t *testing.T, doc, path string) *FieldError {
	t.Helper()
	var f testFile
	err := Decode([]byte(doc), &f)
	for _, fe := range FieldErrors(err) {
		if fe.Path == path {
			return fe
		}
	}
	t.Fatalf("Decode(%s) = %v, want a problem at %s", doc, err, path)
	return nil
}

// TestDecodeProblems: each kind of wrong value is reported at its JSON path, in the file's words.
func TestDecodeProblems(t *testing.T) {
	tests := []struct{ name, doc, path, problem string }{
		{"UnknownKeyNearMatch", `{"smtp": {"adr": "x"}}`, "smtp.adr", `unknown key (did you mean "addr"?)`},
		{"UnknownKeySwappedLetters", `{"queue": {"wrokers": 4}}`, "queue.wrokers", `unknown key (did you mean "workers"?)`},
		{"UnknownKeyOtherCase", `{"smtp": {"Addr": "x"}}`, "smtp.Addr", `unknown key (did you mean "addr"?)`},
		{"UnknownKeyListsKnown", `{"queue": {"threads": 4}}`, "queue.threads", "unknown key (known keys: workers, min_backoff)"},
		{"UnknownKeyIgnoredField", `{"Internal": 1}`, "Internal", ""},
		{"UnknownKeyInEmbedded", `{"inbound": {"on_faild": "deliver"}}`, "inbound.on_faild", `unknown key (did you mean "on_failed"?)`},
		{"UnknownKeyInMapValue", `{"gateway": {"policies": {"otp": {"lifetme": "1m"}}}}`, "gateway.policies.otp.lifetme", `unknown key (did you mean "lifetime"?)`},
		{"UnknownKeyInListElement", `{"gateway": {"rules": [{}, {"clas": "otp"}]}}`, "gateway.rules[1].clas", `unknown key (did you mean "class"?)`},
		{"UnknownKeyBehindPointer", `{"hsm": {"modul": "x"}}`, "hsm.modul", `unknown key (did you mean "module"?)`},
		{"StringForNumber", `{"smtp": {"max_recipients": "100"}}`, "smtp.max_recipients", `"100" is a string, want a number`},
		{"NumberForString", `{"smtp": {"addr": 2525}}`, "smtp.addr", "2525 is a number, want a string"},
		{"BoolForString", `{"data": true}`, "data", "true is true or false, want a string"},
		{"ObjectForString", `{"data": {}}`, "data", "got an object, want a string"},
		{"ListForObject", `{"smtp": []}`, "smtp", "got a list, want an object"},
		{"StringForList", `{"gateway": {"rules": "otp"}}`, "gateway.rules", `"otp" is a string, want a list`},
		{"StringForBool", `{"inbound": {"enabled": "yes"}}`, "inbound.enabled", `"yes" is a string, want true or false`},
		{"LongStringShortened", `{"count": 1, "smtp": {"max_recipients": "` + strings.Repeat("x", 60) + `"}}`, "smtp.max_recipients",
			`"` + strings.Repeat("x", 35) + `…" is a string, want a number`},
		{"Fraction", `{"smtp": {"max_recipients": 1.5}}`, "smtp.max_recipients", "1.5 is not a whole number (write it without a fraction or exponent)"},
		{"OutOfRange", `{"retries": 300}`, "retries", "300 is out of range (want -128 to 127)"},
		{"Negative", `{"size": -1}`, "size", "-1 is negative, want 0 or more"},
		{"FloatOutOfRange", `{"ratio": 1e300}`, "ratio", "1e300 is out of range"},
		{"BadDuration", `{"queue": {"min_backoff": "5 minutes"}}`, "queue.min_backoff", `"5 minutes" is not a duration (use e.g. 5m, 90s, 120h)`},
		{"BadDurationBehindPointer", `{"gateway": {"policies": {"otp": {"lifetime": "soon"}}}}`, "gateway.policies.otp.lifetime", `"soon" is not a duration (use e.g. 5m, 90s, 120h)`},
		{"NumberForDuration", `{"queue": {"min_backoff": 300}}`, "queue.min_backoff", `300 is a number, want a duration in quotes, e.g. "5m"`},
		{"MapValue", `{"extra": {"a": 1}}`, "extra.a", "1 is a number, want a string"},
		{"MapKeyNotAName", `{"smtp": {"users": {"bank.mta": 1}}}`, `smtp.users["bank.mta"]`, "1 is a number, want a string"},
		{"ListElement", `{"inbound": {"support_addresses": ["a@b", 2]}}`, "inbound.support_addresses[1]", "2 is a number, want a string"},
		{"FixedSizeList", `{"limits": [1, "2"]}`, "limits[1]", `"2" is a string, want a number`},
		{"StringOption", `{"count": 5}`, "count", `5 is a number, want a number written as a string (e.g. "1")`},
		{"DuplicateKey", "{\"smtp\": {\n  \"addr\": \"a\",\n  \"addr\": \"b\"}}", "smtp.addr", "set twice in one object (first at line 2, column 3): keep one"},
		{"DuplicateMapKey", `{"extra": {"a": "1", "a": "2"}}`, "extra.a", "set twice in one object (first at line 1, column 12): keep one"},
		{"DuplicateSection", `{"queue": {}, "queue": {}}`, "queue", "set twice in one object (first at line 1, column 2): keep one"},
		{"OwnUnmarshalJSON", `{"method": "fax"}`, "method", "want smime or pgp"},
		{"OwnUnmarshalJSONKind", `{"method": 5}`, "method", "want smime or pgp"},
		{"MapKeyNotANumber", `{"ports": {"25": "smtp", "smtps": "x"}}`, "ports.smtps", "the key is not a number"},
		{"MapValueWithNumberKeys", `{"ports": {"25": 25}}`, "ports.25", "25 is a number, want a string"},
		{"MapKeyUnmarshalText", `{"classes": {"otp": 1, "promo": 2}}`, "classes.promo", "not a class"},
		{"TopLevelNotAnObject", `["smtp"]`, "", "the file must hold an object, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := problem(t, tt.doc, tt.path)
			if tt.problem != "" && fe.Problem != tt.problem {
				t.Fatalf("%s: problem %q, want %q", tt.path, fe.Problem, tt.problem)
			}
			if strings.Contains(fe.Error(), "test") || strings.Contains(fe.Error(), "config.") {
				t.Fatalf("%q names a Go type", fe.Error())
			}
		})
	}
}

// TestDecodeAllowsWhatJSONAllows: null, omitted keys and valid values are no problem, and the result is
// json.Unmarshal's.
func TestDecodeAllowsWhatJSONAllows(t *testing.T) {
	for _, doc := range []string{
		`{}`,
		` {"data": null, "smtp": null, "hsm": null, "extra": null, "limits": null, "count": null} `,
		`{"queue": {"min_backoff": null}, "gateway": {"policies": {"otp": {"lifetime": null}}}}`,
		`{"data": "d", "smtp": {"addr": "127.0.0.1:25", "max_recipients": 10, "users": {"a.b": "h"}, "read_timeout": "90s"},
		  "gateway": {"rules": [{"sender": "@bank.example", "class": "otp"}], "policies": {"otp": {"encryption": "required", "lifetime": "10m"}}},
		  "inbound": {"enabled": true, "support_addresses": ["support@bank.example"], "on_failed": "quarantine", "delivery": "x"},
		  "hsm": {"module": "m"}, "limits": [1, 2, 3], "retries": -128, "size": 65535, "ratio": 0.5, "count": "7", "any": {"x": [1]},
		  "method": "pgp", "ports": {"25": "smtp", "-1": ""}, "classes": {"otp": 1}}`,
	} {
		var got, want testFile
		got.SMTP.MaxRecipients, want.SMTP.MaxRecipients = 100, 100 // decoded over defaults, as loadConfig does
		if err := Decode([]byte(doc), &got); err != nil {
			t.Fatalf("Decode(%s): %v", doc, err)
		}
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(%s) = %+v, json.Unmarshal = %+v", doc, got, want)
		}
	}
}

// TestDecodeReportsEveryProblem: an operator sees all the problems of a file at once, and the values
// that were right are decoded (so that validation can report its problems too).
func TestDecodeReportsEveryProblem(t *testing.T) {
	doc := `{
	  "data": "/var/lib/sealpost",
	  "smtp": {"adr": "0.0.0.0:25", "max_recipients": "100", "Addr": "1.2.3.4:25"},
	  "queue": {"workers": 8, "min_backoff": "5 minutes"},
	  "gateway": {"rules": [{"sender": "otp@bank.example", "class": 3}]},
	  "inbound": {"support_addresses": ["support@bank.example"], "on_failed": "deliver", "on_failed": "quarantine"}
	}`
	f := testFile{SMTP: testListener{Addr: "127.0.0.1:2525", MaxRecipients: 100}, Queue: testQueue{MinBackoff: Duration(time.Minute)}}
	err := Decode([]byte(doc), &f)
	var paths []string
	for _, fe := range FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	want := []string{"smtp.adr", "smtp.max_recipients", "smtp.Addr", "queue.min_backoff", "gateway.rules[0].class", "inbound.on_failed"}
	if !slices.Equal(paths, want) {
		t.Fatalf("problems at %q, want %q\n%v", paths, want, err)
	}
	if f.Data != "/var/lib/sealpost" || f.Queue.Workers != 8 || f.Inbound.OnFailed != "quarantine" ||
		len(f.Gateway.Rules) != 1 || f.Gateway.Rules[0].Sender != "otp@bank.example" {
		t.Fatalf("the right values were not decoded: %+v", f)
	}
	if f.SMTP.Addr != "127.0.0.1:2525" || f.SMTP.MaxRecipients != 100 || f.Queue.MinBackoff != Duration(time.Minute) {
		t.Fatalf("a wrong value (or an unknown key matching a field but for case) changed the configuration: %+v", f)
	}
}

// TestDecodeSyntax: a file that is not JSON gives the line and column of the problem, in words.
func TestDecodeSyntax(t *testing.T) {
	tests := []struct {
		name, doc     string
		line, column  int
		problemPrefix string
	}{
		{"MissingValue", "{\n  \"smtp\": {\n    \"addr\": }\n}", 3, 13, "expected a value, found '}'"},
		{"Truncated", "{\n  \"smtp\": {\"addr\": \"x\"\n", 2, 23, "the file ends before the JSON value does"},
		{"TruncatedInString", `{"data": "abc`, 1, 14, "the file ends before the JSON value does"},
		{"Empty", " \n", 1, 1, "the file is empty"},
		{"TwoValues", "{}\n{}", 2, 1, "a second JSON value"},
		{"Trailing", `{} ]`, 1, 4, "found ']' after the end of the JSON value"},
		{"TrailingString", `{} "x"`, 1, 4, "a second JSON value"},
		{"ByteOrderMark", "\uFEFF{}", 1, 1, "expected a value, found a byte order mark"},
		{"TrailingComma", `{"data": "x",}`, 1, 14, "found '}' after a comma"},
		{"TrailingCommaInList", `{"senders": ["a",]}`, 1, 18, "found ']' after a comma"},
		{"MissingColon", `{"data" "x"}`, 1, 9, "expected ':' after the key, found '\"'"},
		{"MissingComma", "{\"data\": \"x\"\n \"smtp\": {}}", 2, 2, "expected ',' or '}' after the value"},
		{"MissingCommaInList", `{"senders": ["a" "b"]}`, 1, 18, "expected ',' or ']' after the element"},
		{"UnquotedKey", `{data: "x"}`, 1, 2, "expected a key in double quotes, found 'd'"},
		{"UnquotedString", `{"data": sealpost}`, 1, 10, "expected a value, found 's' (strings need double quotes)"},
		{"Misspelled", `{"inbound": {"enabled": ture}}`, 1, 26, "expected true, false or null"},
		{"UnclosedString", "{\"data\": \"x\n}", 1, 12, "the string is not closed before the end of the line"},
		{"Tab", "{\"data\": \"a\tb\"}", 1, 12, "a string cannot hold U+0009"},
		{"BadEscape", `{"data": "C:\temp\x"}`, 1, 19, `found 'x' after a backslash`},
		{"BadNumber", `{"count": 1.}`, 1, 13, "malformed number"},
		{"ColumnCountsCharacters", "{\"data\": \"ä€\" x}", 1, 15, "expected ',' or '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f testFile
			err := Decode([]byte(tt.doc), &f)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Decode = %v, want a *SyntaxError", err)
			}
			if se.Line != tt.line || se.Column != tt.column || !strings.HasPrefix(se.Problem, tt.problemPrefix) {
				t.Fatalf("line %d, column %d, %q; want line %d, column %d, %q…", se.Line, se.Column, se.Problem, tt.line, tt.column, tt.problemPrefix)
			}
			if len(FieldErrors(err)) != 0 {
				t.Fatalf("field problems besides the syntax error: %v", err)
			}
			if strings.Contains(se.Error(), "invalid character") {
				t.Fatalf("%q is encoding/json's wording", se)
			}
		})
	}
	se := &SyntaxError{File: "sealpost.json", Line: 3, Column: 17, Problem: "expected a value, found '}'"}
	if se.Error() != "sealpost.json:3:17: expected a value, found '}'" {
		t.Fatalf("with a file: %q", se)
	}
	se.File = ""
	if se.Error() != "line 3, column 17: expected a value, found '}'" {
		t.Fatalf("without a file: %q", se)
	}
}

func TestDecodeNeedsAPointer(t *testing.T) {
	var f testFile
	if err := Decode([]byte(`{}`), f); err == nil {
		t.Fatal("decoded into a non-pointer")
	}
	if err := Decode([]byte(`{}`), (*testFile)(nil)); err == nil {
		t.Fatal("decoded into a nil pointer")
	}
}

// TestFieldsFollowEncodingJSON: the keys of embedded structs resolve as encoding/json resolves them.
func TestFieldsFollowEncodingJSON(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string
		C string `json:"c"`
	}
	type other struct {
		C string `json:"c"`
		D string `json:"d"`
	}
	type outer struct {
		inner
		*other
		A string `json:"a"` // shallower: wins over inner's a
		X string `json:"x,omitempty"`
		Y string `json:",omitempty"` // no name in the tag: the key is the Go name
	}
	var got []string
	for _, f := range fields(reflect.TypeFor[outer]()) {
		got = append(got, f.name)
	}
	// c is in two embedded structs of one depth, both tagged: encoding/json drops it.
	if want := []string{"B", "d", "a", "x", "Y"}; !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}
