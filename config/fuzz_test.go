package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts encoding/json accepts with the same result.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"data": "d", "smtp": {"addr": "127.0.0.1:25", "max_recipients": 10, "users": {"a": "h"}, "read_timeout": "90s"}}`,
		`{"gateway": {"rules": [{"sender": "@bank.example", "class": "otp"}], "policies": {"otp": {"lifetime": "10m"}}}}`,
		`{"inbound": {"enabled": true, "support_addresses": ["s@b"], "on_failed": "deliver"}, "hsm": {"module": "m"}}`,
		`{"limits": [1, 2, 3], "retries": -128, "size": 65535, "ratio": 0.5, "count": "7", "any": {"x": [1, null]}}`,
		`{"smtp": {"adr": "x", "Addr": "y", "max_recipients": "100"}, "queue": {"min_backoff": "5 minutes"}}`,
		`{"smtp": {"addr": "a", "addr": "b"}, "extra": {"k.k": 1}}`,
		"{\n  \"smtp\": {\n    \"addr\": }\n}",
		`{"method": "smime", "ports": {"25": "smtp"}, "classes": {"otp": 1, "promo": 2}}`,
		`{"data": "x",}`, `{} {}`, `{"data": "abc`, ``, `[]`, `null`, `{"count": "x"}`, `{"data": "\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got testFile
		if Decode(data, &got) != nil {
			return
		}
		var want testFile
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("Decode accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode = %+v, json.Unmarshal = %+v, for %q", got, want, data)
		}
	})
}
