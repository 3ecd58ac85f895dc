package queue

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleMeta() (*entryMeta, []byte) {
	data := []byte("Subject: x\r\n\r\nciphertext\r\n")
	return &entryMeta{
		ID:         "ABCDEFGHIJKLMNOP",
		From:       "sender@bank.example",
		Recipients: []string{"a@a.example", "b@b.example"},
		Class:      "otp",
		Created:    time.Date(2026, 3, 1, 9, 0, 0, 123, time.UTC),
		Expires:    time.Date(2026, 3, 1, 9, 10, 0, 0, time.UTC),
		Size:       len(data),
	}, data
}

func encodeEntry(t testing.TB, m *entryMeta, data []byte) []byte {
	var b bytes.Buffer
	if err := writeEntry(&b, m, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sampleState() *entryState {
	return &entryState{
		ID:   "ABCDEFGHIJKLMNOP",
		Next: time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC),
		Rcpts: []rcptState{
			{Status: statusDelivered, Attempts: 1},
			{Status: statusFailed, Attempts: 2, Notified: true,
				Last: &DeliveryError{Code: 550, Enhanced: "5.1.1", Message: `no "such" user`}},
			{Status: statusPending, Attempts: 1,
				Last: &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.3.0", Message: "try later"}},
		},
	}
}

func encodeState(t testing.TB, st *entryState) []byte {
	var b bytes.Buffer
	if err := writeState(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEntryRoundTrip(t *testing.T) {
	m, data := sampleMeta()
	got, gotData, err := parseEntry(encodeEntry(t, m, data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) || !bytes.Equal(gotData, data) {
		t.Errorf("round trip: got %+v %q, want %+v %q", got, gotData, m, data)
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := sampleState()
	got, err := parseState(encodeState(t, st))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip: got %+v, want %+v", got, st)
	}
}

func TestParseEntryRejectsTornAndCorrupt(t *testing.T) {
	m, data := sampleMeta()
	good := encodeEntry(t, m, data)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x20
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated in data", good[:len(good)/2]},
		{"truncated in end record", good[:len(good)-10]},
		{"end record missing", good[:len(good)-trailerLen]},
		{"data byte changed", flip(len(good) - trailerLen - 3)},
		{"header byte changed", flip(20)},
		{"digest changed", flip(len(good) - 5)},
		{"appended garbage", append(bytes.Clone(good), "x"...)},
		{"state file as entry", encodeState(t, sampleState())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseEntry(tt.b); err == nil {
				t.Fatal("parseEntry accepted a torn or corrupt entry")
			}
		})
	}
}

// A file whose end record is right but whose header lies is corrupt too.
func TestParseEntryRejectsBadHeader(t *testing.T) {
	m, data := sampleMeta()
	good := string(encodeEntry(t, m, data))
	body := good[:len(good)-trailerLen]
	tests := map[string]string{
		"size too big":    strings.Replace(body, "size 26", "size 27", 1),
		"no recipients":   strings.Replace(strings.Replace(body, "rcpt \"a@a.example\"\n", "", 1), "rcpt \"b@b.example\"\n", "", 1),
		"bad id":          strings.Replace(body, "id ABCDEFGHIJKLMNOP", "id ../../etc/pass", 1),
		"newline in rcpt": strings.Replace(body, `"a@a.example"`, `"a@a.example\r\nX"`, 1),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			hw := newHashingWriter(&out)
			hw.Write([]byte(b))
			hw.writeTrailer()
			if _, _, err := parseEntry(out.Bytes()); err == nil {
				t.Fatal("parseEntry accepted a bad header")
			}
		})
	}
}

func FuzzReadEntry(f *testing.F) {
	m, data := sampleMeta()
	entry := encodeEntry(f, m, data)
	state := encodeState(f, sampleState())
	f.Add(entry)
	f.Add(entry[:len(entry)-7])
	f.Add(entry[:len(entry)/2])
	f.Add(state)
	f.Add(state[:len(state)-1])
	f.Add([]byte("garbage\x00\xff\nEND 0000000000000000 " + strings.Repeat("0", 64) + "\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		// As found on disk, and with a valid end record so the fuzzer
		// reaches the header parsers behind the digest.
		checkParsers(t, b)
		if len(b) >= trailerLen {
			b = b[:len(b)-trailerLen]
		}
		var sealed bytes.Buffer
		hw := newHashingWriter(&sealed)
		hw.Write(b)
		hw.writeTrailer()
		checkParsers(t, sealed.Bytes())
	})
}

func checkParsers(t *testing.T, b []byte) {
	if m, d, err := parseEntry(b); err == nil {
		again, d2, err := parseEntry(encodeEntry(t, m, d))
		if err != nil || !reflect.DeepEqual(again, m) || !bytes.Equal(d, d2) {
			t.Fatalf("entry does not round-trip: %v", err)
		}
	}
	if st, err := parseState(b); err == nil {
		again, err := parseState(encodeState(t, st))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("state does not round-trip: %v", err)
		}
	}
}
