package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// exportTables are the tables an export covers.
var exportTables = []string{"registrations", "threads", "thread_messages", "held", "capabilities", "recipient_keys", "held_blobs"}

// fillForExport stores some of every kind of row, with bytes that are not
// UTF-8 where mail puts them.
func fillForExport(t *testing.T, s contract) {
	t.Helper()
	ctx := context.Background()
	const odd = "\xff\xfe\x00Ä\x80"
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Register(ctx, Registration{Address: "Alice@Example.com", Method: MethodSMIME, Fingerprint: fpA, Registered: t0}))
	must(s.Register(ctx, Registration{Address: "alice@example.com", Method: MethodPGP, Fingerprint: fpB, Registered: t0}))
	must(s.Register(ctx, Registration{Address: "b\xffob@example.org", Method: MethodPGP, Fingerprint: fpB, Registered: t0.Add(time.Hour)}))
	th, err := s.NewThread(ctx, "alice@example.com", MethodSMIME, fpA, "Subject "+odd)
	must(err)
	th2, err := s.NewThread(ctx, "carol@example.net", "", "", "")
	must(err)
	must(s.AddMessage(ctx, ThreadMessage{Token: th.Token, MessageID: "<out1@bank.example>", At: t0}))
	must(s.AddMessage(ctx, ThreadMessage{Token: th.Token, MessageID: "<" + odd + "@client>", Inbound: true, Verdict: odd, At: t0.Add(time.Minute)}))
	must(s.AddMessage(ctx, ThreadMessage{Token: th2.Token, MessageID: "<out2@bank.example>", At: t0}))
	must(s.Hold(ctx, Held{ID: "h1", Received: t0, From: "From: " + odd, Reason: "unsigned", Verdict: odd, Ref: "held/h1"}))
	must(s.Hold(ctx, Held{ID: "h2" + odd, Received: t0.Add(time.Second), From: "x@y", Reason: "r", Verdict: "v", Ref: "held/h2"}))
	must(s.Release(ctx, "h1", testDecision()))
	must(s.SetCapabilities(ctx, Capabilities{Address: "alice@example.com", SMIMEGCM: true, Updated: t0}))
	must(s.SetCapabilities(ctx, Capabilities{Address: "d\x80@example.com", PGPSEIPDv2: true, Updated: t0.Add(time.Hour)}))
}

func snapshotOf(t *testing.T, s contract) *Snapshot {
	t.Helper()
	snap, err := s.(Exporter).Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func exportOf(t *testing.T, s contract) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(context.Background(), s.(Exporter), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func importInto(t *testing.T, s contract, export []byte) ImportCounts {
	t.Helper()
	n, err := Import(context.Background(), s.(Importer), bytes.NewReader(export))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return n
}

// TestExportRoundTrip: SQLite → PostgreSQL → SQLite keeps every row byte for
// byte and in order; the lookups answer the same on each; the exports agree.
func TestExportRoundTrip(t *testing.T) {
	sqlite, _ := backends[0].open(t)
	pg, _ := backends[1].open(t)
	back, _ := backends[0].open(t)
	fillForExport(t, sqlite)
	want := snapshotOf(t, sqlite)
	if want.records() != 13 {
		t.Fatalf("filled %d records; want 13", want.records())
	}
	first := exportOf(t, sqlite)
	if n := importInto(t, pg, first); n != (ImportCounts{Registrations: 3, Threads: 2, Messages: 3, Held: 2, Capabilities: 2, EvidenceOutbox: 1}) {
		t.Errorf("import into PostgreSQL added %+v", n)
	}
	second := exportOf(t, pg)
	importInto(t, back, second)
	for _, s := range []contract{pg, back} {
		if got := snapshotOf(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("%T after import:\n%+v\nwant\n%+v", s, got, want)
		}
	}
	if third := exportOf(t, back); !bytes.Equal(first, second) || !bytes.Equal(second, third) {
		t.Errorf("exports differ:\n%s\n%s\n%s", first, second, third)
	}
	ctx := context.Background()
	for _, s := range []contract{sqlite, pg, back} {
		regs, err := s.Registrations(ctx, "ALICE@example.com")
		if err != nil || len(regs) != 2 {
			t.Errorf("%T Registrations = %+v, %v", s, regs, err)
		}
		th, err := s.ThreadForMessageIDs(ctx, []string{"<\xff\xfe\x00Ä\x80@client>"})
		if err != nil || th.Subject != want.Threads[0].Subject && th.Subject != want.Threads[1].Subject {
			t.Errorf("%T ThreadForMessageIDs = %+v, %v", s, th, err)
		}
		if c, err := s.Capabilities(ctx, "D\x80@example.com"); err != nil || !c.PGPSEIPDv2 {
			t.Errorf("%T Capabilities = %+v, %v", s, c, err)
		}
		if held, err := s.HeldList(ctx, false); err != nil || len(held) != 1 {
			t.Errorf("%T HeldList = %+v, %v", s, held, err)
		}
	}
}

// TestImportIdempotent: importing twice adds nothing the second time, and
// importing into a store that holds some of the rows adds the rest.
func TestImportIdempotent(t *testing.T) { forEachStore(t, testImportIdempotent) }

func testImportIdempotent(t *testing.T, s contract, _ func(testing.TB) contract) {
	src, _ := backends[0].open(t)
	fillForExport(t, src)
	full := snapshotOf(t, src)
	part := &Snapshot{Registrations: full.Registrations[:1], Threads: full.Threads[:1], Held: full.Held[1:]}
	for _, m := range full.Messages {
		if m.Token == part.Threads[0].Token {
			part.Messages = append(part.Messages, m)
			break
		}
	}
	var buf bytes.Buffer
	if err := WriteExport(&buf, part); err != nil {
		t.Fatal(err)
	}
	if n := importInto(t, s, buf.Bytes()); n != (ImportCounts{Registrations: 1, Threads: 1, Messages: 1, Held: 1}) {
		t.Errorf("partial import added %+v", n)
	}
	export := exportOf(t, src)
	if n := importInto(t, s, export); n != (ImportCounts{Registrations: 2, Threads: 1, Messages: 2, Held: 1, Capabilities: 2, EvidenceOutbox: 1}) {
		t.Errorf("import over the partial one added %+v", n)
	}
	if got := snapshotOf(t, s); !reflect.DeepEqual(got, full) {
		t.Errorf("after import:\n%+v\nwant\n%+v", got, full)
	}
	if n := importInto(t, s, export); n != (ImportCounts{}) {
		t.Errorf("second import added %+v", n)
	}
	if got := snapshotOf(t, s); !reflect.DeepEqual(got, full) {
		t.Errorf("after the second import:\n%+v\nwant\n%+v", got, full)
	}
}

// badExports are exports Import refuses, by what is wrong with them.
func badExports(t *testing.T) map[string]string {
	src, _ := backends[0].open(t)
	fillForExport(t, src)
	good := string(exportOf(t, src))
	lines := strings.SplitAfter(strings.TrimSuffix(good, "\n"), "\n")
	header, rows, end := lines[0], strings.Join(lines[1:len(lines)-1], ""), lines[len(lines)-1]
	return map[string]string{
		"empty":              "",
		"no header":          rows + end,
		"newer version":      `{"sealpost-store-export":2}` + "\n" + rows + end,
		"header with extras": `{"sealpost-store-export":1,"x":1}` + "\n" + rows + end,
		"truncated":          header + rows,
		"cut mid-line":       good[:len(good)-len(end)/2],
		"end miscounts":      header + rows + `{"end":{"records":3}}` + "\n",
		"data after end":     good + `{"held":{"id":"aA=="}}` + "\n",
		"unknown field":      header + `{"held":{"id":"aA==","colour":"red"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"two rows a line":    header + `{"held":{"id":"aA=="},"thread":{"token":"dA=="}}` + "\n" + rows + end,
		"unknown kind":       header + `{"secret":{}}` + "\n" + rows + end,
		"bad address":        header + `{"capabilities":{"address":"bm8tZG9tYWlu"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"address not stored": header + `{"capabilities":{"address":"YUBFWEFNUExFLkNPTQ=="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"bad method":         header + `{"registration":{"address":"YUBiLmM=","method":"rot13","fingerprint":"AB"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"lower-case fp":      header + `{"registration":{"address":"YUBiLmM=","method":"pgp","fingerprint":"ab"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"orphan message":     header + `{"message":{"token":"bm9uZQ==","message_id":"PHhAeT4="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"not base64":         header + `{"held":{"id":"!!"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"huge line":          header + `{"held":{"id":"` + strings.Repeat("A", maxExportLine) + `"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"delivered, held":    header + `{"held":{"id":"aA==","delivered":true}}` + "\n" + rows + `{"end":{"records":13}}`,
		"key bad method":     header + `{"recipient_key":{"method":"x","fingerprint":"AB","data":"aw=="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"key lower-case fp":  header + `{"recipient_key":{"method":"pgp","fingerprint":"ab","data":"aw=="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"key without data":   header + `{"recipient_key":{"method":"pgp","fingerprint":"AB"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"key twice":          header + `{"recipient_key":{"method":"pgp","fingerprint":"AB","data":"aw=="}}` + "\n" + `{"recipient_key":{"method":"pgp","fingerprint":"AB","data":"bA=="}}` + "\n" + rows + `{"end":{"records":14}}`,
		"key too large":      header + `{"recipient_key":{"method":"pgp","fingerprint":"AB","data":"` + base64.StdEncoding.EncodeToString(make([]byte, MaxRecipientKey+1)) + `"}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob cut short":     header + rows + `{"held_blob":{"id":"aA==","size":4,"offset":0,"data":"YWI="}}` + "\n" + `{"end":{"records":13}}`,
		"blob then a row":    header + `{"held_blob":{"id":"aA==","size":4,"offset":0,"data":"YWI="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob bad offset":    header + `{"held_blob":{"id":"aA==","size":4,"offset":0,"data":"YWI="}}` + "\n" + `{"held_blob":{"id":"aA==","size":4,"offset":1,"data":"YWI="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob other id":      header + `{"held_blob":{"id":"aA==","size":4,"offset":0,"data":"YWI="}}` + "\n" + `{"held_blob":{"id":"aQ==","size":4,"offset":2,"data":"YWI="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob over size":     header + `{"held_blob":{"id":"aA==","size":1,"offset":0,"data":"YWI="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob huge size":     header + `{"held_blob":{"id":"aA==","size":1099511627776,"offset":0,"data":"YWI="}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob no size":       header + `{"held_blob":{"id":"aA==","offset":0,"data":""}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob no data":       header + `{"held_blob":{"id":"aA==","size":0,"offset":0}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob no id":         header + `{"held_blob":{"size":0,"offset":0,"data":""}}` + "\n" + rows + `{"end":{"records":13}}`,
		"blob twice":         header + `{"held_blob":{"id":"aA==","size":0,"offset":0,"data":""}}` + "\n" + `{"held_blob":{"id":"aA==","size":0,"offset":0,"data":""}}` + "\n" + rows + `{"end":{"records":14}}`,
		"blob with a row":    header + `{"held_blob":{"id":"aA==","size":0,"offset":0,"data":""},"held":{"id":"aA=="}}` + "\n" + rows + `{"end":{"records":13}}`,
	}
}

// TestImportRefusesBadExport: a truncated or hostile export is refused with
// ErrBadExport and a message naming the problem, and imports nothing.
func TestImportRefusesBadExport(t *testing.T) {
	bad := badExports(t)
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		for name, export := range bad {
			_, err := Import(context.Background(), s.(Importer), strings.NewReader(export))
			if !errors.Is(err, ErrBadExport) {
				t.Errorf("%s: Import = %v; want ErrBadExport", name, err)
			} else if len(err.Error()) > 300 {
				t.Errorf("%s: error of %d bytes", name, len(err.Error()))
			}
		}
		for _, table := range exportTables {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%d rows in %s after refused imports", n, table)
			}
		}
	})
}

// TestImportOneTransaction: a write that fails part way (a message whose
// thread the destination lacks, past the checks of ReadExport) leaves
// nothing of the import behind.
func TestImportOneTransaction(t *testing.T) {
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		src, _ := backends[0].open(t)
		fillForExport(t, src)
		snap := snapshotOf(t, src)
		snap.Threads = snap.Threads[:1]
		snap.Messages = append(snap.Messages, ThreadMessage{Token: "no-such-thread", MessageID: "<orphan@x>", At: time.Now()})
		if _, err := s.(Importer).ImportSnapshot(context.Background(), snap); err == nil {
			t.Fatal("ImportSnapshot of a message without its thread succeeded")
		}
		for _, table := range exportTables {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%d rows in %s after a failed import", n, table)
			}
		}
	})
}

// FuzzReadExport: ReadExport refuses with ErrBadExport or returns a
// snapshot that writes and reads back to itself.
func FuzzReadExport(f *testing.F) {
	var good bytes.Buffer
	s := &Snapshot{
		Registrations: []Registration{{Address: "a\xff@b.c", Method: MethodPGP, Fingerprint: "AB", Registered: unstamp(1)}},
		Threads:       []Thread{{Token: "t", Customer: "c@d.e", Created: unstamp(2), Subject: "\x00"}},
		Messages:      []ThreadMessage{{Token: "t", MessageID: "<m@x>", Inbound: true, Verdict: "v", At: unstamp(3)}},
		Held:          []Held{{ID: "h", Received: unstamp(4), From: "\x80", Released: true}},
		Capabilities:  []Capabilities{{Address: "c@d.e", SMIMEGCM: true, Updated: unstamp(5)}},
		RecipientKeys: []RecipientKey{{Method: MethodSMIME, Fingerprint: "AB", Data: []byte("pem"), Added: unstamp(6)}},
		HeldBlobs:     []HeldBlob{{ID: "h", Data: []byte("sealed\x00")}, {ID: "i", Data: []byte{}}},
	}
	if err := WriteExport(&good, s); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	var api bytes.Buffer
	if err := WriteExport(&api, &Snapshot{
		APITokens:    []APIToken{{ID: "tok_abcdefghijklmnop", Name: "n", Hash: make([]byte, 32), Scopes: []string{"admin", "otp"}, Created: unstamp(1), Revoked: unstamp(2)}},
		IssuedCerts:  []IssuedCert{{Serial: "1F", Address: "c@d.e", Fingerprint: strings.Repeat("A", 64), DER: []byte{0x30}, NotBefore: unstamp(1), NotAfter: unstamp(2), Issued: unstamp(3), Revoked: unstamp(4), Reason: 1}},
		CRLNumber:    9,
		Audit:        []AuditRecord{{Seq: 1, At: unstamp(5), Actor: "a", Action: "b", Target: "\xff", Status: 200, Detail: "\x00", Node: "n"}},
		MailboxItems: []MailboxItem{{ID: "m", Address: "c@d.e", Class: "x", Received: unstamp(6), Expires: unstamp(7), Size: 3, Data: []byte("sealed"), Read: unstamp(8)}},
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(api.Bytes())
	f.Add([]byte(`{"sealpost-store-export":1}` + "\n" + `{"end":{"records":0}}` + "\n"))
	f.Add([]byte(`{"sealpost-store-export":1}` + "\n" + `{"held":{"id":"aA==","from":null}}` + "\n" + `{"end":{"records":1}}`))
	f.Add([]byte(`{"sealpost-store-export":2}`))
	f.Add([]byte(`{"sealpost-store-export":1}` + "\n" + `{"message":{"token":"dA==","message_id":"PD4="}}` + "\n" + `{"end":{"records":1}}`))
	f.Add([]byte(`{"sealpost-store-export":1}` + "\n" + `{"held_blob":{"id":"aA==","size":4,"offset":0,"data":"YWI="}}` + "\n" +
		`{"held_blob":{"id":"aA==","size":4,"offset":2,"data":"Y2Q="}}` + "\n" + `{"end":{"records":1}}`))
	f.Add([]byte(`{"sealpost-store-export":1}` + "\n" + `{"held":{"id":"aA==","released":true,"delivered":true}}` + "\n" +
		`{"recipient_key":{"method":"pgp","fingerprint":"AB","data":"aw==","added":7}}` + "\n" + `{"end":{"records":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ReadExport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadExport) {
				t.Fatalf("ReadExport error does not wrap ErrBadExport: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := WriteExport(&out, snap); err != nil {
			t.Fatal(err)
		}
		again, err := ReadExport(&out)
		if err != nil {
			t.Fatalf("ReadExport of WriteExport's output: %v", err)
		}
		if !reflect.DeepEqual(again, snap) {
			t.Fatalf("round trip changed the snapshot:\n%+v\n%+v", snap, again)
		}
	})
}

// fillKeysAndBlobs adds recipient keys, held bytes (one of them cut into
// several lines, one empty) and a delivered message to what fillForExport
// stored.
func fillKeysAndBlobs(t *testing.T, s contract) {
	t.Helper()
	ctx := context.Background()
	big := make([]byte, 2*heldBlobChunk+12345)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	blobs := s.(heldBlobs)
	for _, err := range []error{
		s.PutRecipientKey(ctx, RecipientKey{Method: MethodSMIME, Fingerprint: fpA, Data: []byte("-----BEGIN CERTIFICATE-----\n\x00\xff")}),
		s.PutRecipientKey(ctx, RecipientKey{Method: MethodPGP, Fingerprint: fpB[:40], Data: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), Source: SourceLearned}),
		blobs.PutHeld(ctx, "h1", big),
		blobs.PutHeld(ctx, "h2\xff\xfe\x00Ä\x80", nil),
		s.Hold(ctx, Held{ID: "h3", Received: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Ref: "h3"}),
		s.Release(ctx, "h3", testDecision()),
		s.MarkDelivered(ctx, "h3"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestExportKeysAndBlobs: recipient keys, held bytes and Delivered go
// SQLite → PostgreSQL → SQLite unchanged; the import bumps the topics it
// wrote; importing again adds and bumps nothing.
func TestExportKeysAndBlobs(t *testing.T) {
	ctx := context.Background()
	sqlite, _ := backends[0].open(t)
	pg, _ := backends[1].open(t)
	back, _ := backends[0].open(t)
	fillForExport(t, sqlite)
	fillKeysAndBlobs(t, sqlite)
	want := snapshotOf(t, sqlite)
	if len(want.RecipientKeys) != 2 || want.RecipientKeys[0].Source != SourceLearned || len(want.HeldBlobs) != 2 || !want.Held[2].Delivered {
		t.Fatalf("snapshot: %d keys, %d held bytes, held %+v", len(want.RecipientKeys), len(want.HeldBlobs), want.Held)
	}
	first := exportOf(t, sqlite)
	if n := bytes.Count(first, []byte(`"held_blob"`)); n != 4 {
		t.Errorf("%d held_blob lines; want 4 (3 for h1, 1 for the empty one)", n)
	}
	wantCounts := ImportCounts{Registrations: 3, Threads: 2, Messages: 3, Held: 3, Capabilities: 2, RecipientKeys: 2, HeldBlobs: 2, EvidenceOutbox: 2}
	if n := importInto(t, pg, first); n != wantCounts {
		t.Errorf("import into PostgreSQL added %+v; want %+v", n, wantCounts)
	}
	versions, err := pg.ChangeVersions(ctx)
	if err != nil || !maps.Equal(versions, map[string]int64{TopicRegistrations: 1, TopicDirectory: 1, TopicHeld: 1, TopicTokens: 0}) {
		t.Errorf("ChangeVersions after the import = %v, %v; want each topic bumped once", versions, err)
	}
	second := exportOf(t, pg)
	importInto(t, back, second)
	for _, s := range []contract{pg, back} {
		if got := snapshotOf(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("%T after import differs from the source", s)
		}
		if n := importInto(t, s, first); n != (ImportCounts{}) {
			t.Errorf("%T: second import added %+v", s, n)
		}
		if got := snapshotOf(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("%T after the second import differs from the source", s)
		}
	}
	if again, err := pg.ChangeVersions(ctx); err != nil || !maps.Equal(again, versions) {
		t.Errorf("ChangeVersions after an import that added nothing = %v, %v; want %v", again, err, versions)
	}
	if third := exportOf(t, back); !bytes.Equal(first, second) || !bytes.Equal(second, third) {
		t.Error("exports differ")
	}
	if got, err := pg.(heldBlobs).GetHeld(ctx, "h1"); err != nil || !bytes.Equal(got, want.HeldBlobs[0].Data) {
		t.Errorf("GetHeld after import: %d bytes, %v", len(got), err)
	}
	if got, err := pg.ClaimReleased(ctx, "n", time.Hour, 10); err != nil || len(got) != 1 || got[0].ID != "h1" {
		t.Errorf("ClaimReleased after import = %+v, %v; want h1 only (h3 was delivered)", got, err)
	}
}

// TestImportKeysAndBlobs: an imported key replaces the data of the stored
// one (keeping its Added); other bytes under a stored held ID are
// ErrConflict, and that import leaves nothing behind.
func TestImportKeysAndBlobs(t *testing.T) { forEachStore(t, testImportKeysAndBlobs) }

func testImportKeysAndBlobs(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	if err := s.PutRecipientKey(ctx, RecipientKey{Method: MethodPGP, Fingerprint: fpA, Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.RecipientKey(ctx, MethodPGP, fpA)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(heldBlobs).PutHeld(ctx, "h1", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{
		RecipientKeys: []RecipientKey{{Method: MethodPGP, Fingerprint: fpA, Data: []byte("new"), Added: unstamp(1)}},
		HeldBlobs:     []HeldBlob{{ID: "h1", Data: []byte("sealed")}, {ID: "h2", Data: []byte("x")}},
	}
	n, err := s.(Importer).ImportSnapshot(ctx, snap)
	if err != nil || n != (ImportCounts{RecipientKeys: 1, HeldBlobs: 1}) {
		t.Fatalf("ImportSnapshot = %+v, %v; want one key replaced and one held message added", n, err)
	}
	if k, err := s.RecipientKey(ctx, MethodPGP, fpA); err != nil || string(k.Data) != "new" || !k.Added.Equal(stored.Added) {
		t.Errorf("imported key = %+v, %v; want the new data, Added %v", k, err, stored.Added)
	}
	clash := &Snapshot{
		RecipientKeys: []RecipientKey{{Method: MethodSMIME, Fingerprint: fpB, Data: []byte("k"), Added: unstamp(1)}},
		HeldBlobs:     []HeldBlob{{ID: "h2", Data: []byte("other")}},
	}
	if _, err := s.(Importer).ImportSnapshot(ctx, clash); !errors.Is(err, ErrConflict) {
		t.Errorf("import of other held bytes under a stored ID: %v; want ErrConflict", err)
	}
	if _, err := s.RecipientKey(ctx, MethodSMIME, fpB); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused import stored its key: %v", err)
	}
	if got, err := s.(heldBlobs).GetHeld(ctx, "h2"); err != nil || string(got) != "x" {
		t.Errorf("held bytes after the refused import = %q, %v", got, err)
	}
}

// TestImportOldExport: an export written before recipient keys, held bytes
// and Delivered still imports, its held messages not delivered.
func TestImportOldExport(t *testing.T) {
	const old = `{"sealpost-store-export":1}
{"registration":{"address":"YUBiLmM=","method":"pgp","fingerprint":"AB","registered":1}}
{"held":{"id":"aDE=","received":2,"from":"eA==","reason":"cg==","verdict":"dg==","ref":"aDE=","released":true}}
{"end":{"records":2}}
`
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		n, err := Import(context.Background(), s.(Importer), strings.NewReader(old))
		if err != nil || n != (ImportCounts{Registrations: 1, Held: 1}) {
			t.Fatalf("Import = %+v, %v", n, err)
		}
		if h, err := s.HeldGet(context.Background(), "h1"); err != nil || !h.Released || h.Delivered {
			t.Errorf("HeldGet = %+v, %v; want released, not delivered", h, err)
		}
	})
}

// TestAddHeldBlob: AddHeldBlob keeps HeldBlobs ordered by ID, adds the same
// bytes once, and refuses other bytes under an ID and an empty ID.
func TestAddHeldBlob(t *testing.T) {
	var s Snapshot
	for _, id := range []string{"m", "a", "z", "a"} {
		if err := s.AddHeldBlob(id, []byte(id)); err != nil {
			t.Fatalf("AddHeldBlob(%s): %v", id, err)
		}
	}
	if err := s.AddHeldBlob("e", nil); err != nil {
		t.Fatal(err)
	}
	want := []HeldBlob{{"a", []byte("a")}, {"e", []byte{}}, {"m", []byte("m")}, {"z", []byte("z")}}
	if !reflect.DeepEqual(s.HeldBlobs, want) {
		t.Errorf("HeldBlobs = %q; want %q", s.HeldBlobs, want)
	}
	if err := s.AddHeldBlob("m", []byte("other")); !errors.Is(err, ErrConflict) {
		t.Errorf("other bytes under an ID: %v; want ErrConflict", err)
	}
	if err := s.AddHeldBlob("", []byte("x")); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty ID: %v; want ErrInvalid", err)
	}
	var buf bytes.Buffer
	if err := WriteExport(&buf, &s); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadExport(&buf); err != nil || !reflect.DeepEqual(got.HeldBlobs, want) {
		t.Errorf("ReadExport of WriteExport = %+v, %v", got, err)
	}
}

// TestExportCarriesQueuedDecisions: the evidence records of decisions the gateway has not
// appended yet go SQLite → PostgreSQL in their order and are taken there once; importing again
// queues none twice; a line that is not a record is refused.
func TestExportCarriesQueuedDecisions(t *testing.T) {
	ctx := context.Background()
	sqlite, _ := backends[0].open(t)
	pg, _ := backends[1].open(t)
	for i, id := range []string{"h1", "h2"} {
		if err := sqlite.Hold(ctx, Held{ID: id, Received: time.Unix(int64(i+1), 0), From: "x@example.com", Reason: "unsigned", Verdict: "none", Ref: id}); err != nil {
			t.Fatal(err)
		}
		d := testDecision()
		d.Evidence = []byte(`{"kind":"action","subject":"` + id + `"}`)
		if err := sqlite.Delete(ctx, id, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := sqlite.QueueEvidence(ctx, "node-b", []byte(`{"kind":"action","subject":"node-b"}`)); err != nil {
		t.Fatal(err)
	}
	export := exportOf(t, sqlite)
	if n := bytes.Count(export, []byte(`{"evidence_outbox":{"line":`)); n != 3 {
		t.Fatalf("%d evidence_outbox lines; want 3:\n%s", n, export)
	}
	if n := importInto(t, pg, export); n.EvidenceOutbox != 3 || n.Held != 2 {
		t.Fatalf("import added %+v; want 2 held and 3 queued records", n)
	}
	if got := snapshotOf(t, pg).EvidenceOutbox; len(got) != 3 || got[2].Node != "node-b" || got[0].Node != "" {
		t.Fatalf("PostgreSQL's outbox %+v; want node-b's request kept for node-b", got)
	}
	if n := importInto(t, pg, export); n != (ImportCounts{}) {
		t.Fatalf("second import added %+v", n)
	}
	var got []string
	if _, err := pg.EvidenceOutboxTake(ctx, "n1", 10, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{`{"kind":"action","subject":"h1"}`, `{"kind":"action","subject":"h2"}`}; !slices.Equal(got, want) {
		t.Fatalf("PostgreSQL's outbox handed %q; want %q", got, want)
	}
	bad := bytes.Replace(export, []byte(`{"evidence_outbox":{"line":"`), []byte(`{"evidence_outbox":{"line":"","x":"`), 1)
	if _, err := ReadExport(bytes.NewReader(bad)); !errors.Is(err, ErrBadExport) {
		t.Fatalf("an export with a hostile outbox line: %v; want ErrBadExport", err)
	}
	empty := regexp.MustCompile(`\{"evidence_outbox":\{"line":"[^"]*"\}\}`).ReplaceAll(export, []byte(`{"evidence_outbox":{"line":""}}`))
	if _, err := ReadExport(bytes.NewReader(empty)); !errors.Is(err, ErrBadExport) {
		t.Fatalf("an export with empty outbox lines: %v; want ErrBadExport", err)
	}
}
