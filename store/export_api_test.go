package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fillAPI stores API tokens (one revoked), issued certificates (one
// revoked), CRL numbers, audit records and mailbox items (one of several
// export lines, one read), with an idempotent call that exports leave out.
func fillAPI(t *testing.T, s contract) {
	t.Helper()
	ctx := context.Background()
	big := make([]byte, 2*heldBlobChunk+777)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	small := testItem("m_2", "Carol@Example.com", 2)
	bigItem := testItem("m-1", "carol@example.com", 1)
	bigItem.Data = big
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutAPIToken(ctx, testToken(1)))
	must(s.PutAPIToken(ctx, testToken(2)))
	must(s.RevokeAPIToken(ctx, tokenID(2), t14.Add(time.Hour)))
	must(s.PutIssuedCert(ctx, testCert(1, "carol@example.com")))
	must(s.PutIssuedCert(ctx, testCert(2, "dave\xff@example.com")))
	must(s.RevokeIssuedCert(ctx, serialOf(2), t14.Add(time.Hour), 4))
	for range 3 {
		_, err := s.NextCRLNumber(ctx)
		must(err)
	}
	_, err := s.AppendAudit(ctx, AuditRecord{At: t14, Actor: "token:" + tokenID(1), Action: "POST /v1/x", Target: "carol@example.com", Status: 201, Detail: "\x00\xff", Node: "a"})
	must(err)
	_, err = s.AppendAudit(ctx, AuditRecord{At: t14.Add(time.Second), Actor: "cli:root", Action: "api token revoke", Target: tokenID(2)})
	must(err)
	must(s.PutMailboxItem(ctx, small))
	must(s.PutMailboxItem(ctx, bigItem))
	must(s.MarkMailboxRead(ctx, "carol@example.com", "m_2", t14.Add(time.Hour)))
	_, _, err = s.BeginIdempotent(ctx, IdempotentCall{TokenID: tokenID(1), Key: "k", RequestHash: hashOf("r")})
	must(err)
}

// TestExportAPI: tokens (hashes only), certificates, the CRL number, the
// audit log and mailbox items go SQLite → PostgreSQL → SQLite unchanged,
// idempotent calls stay behind; the CRL number goes on from the
// exported one; importing again adds nothing.
func TestExportAPI(t *testing.T) {
	ctx := context.Background()
	sqlite, _ := backends[0].open(t)
	pg, _ := backends[1].open(t)
	back, _ := backends[0].open(t)
	fillForExport(t, sqlite)
	fillAPI(t, sqlite)
	want := snapshotOf(t, sqlite)
	if len(want.APITokens) != 2 || len(want.IssuedCerts) != 2 || want.CRLNumber != 3 || len(want.Audit) != 2 || len(want.MailboxItems) != 2 {
		t.Fatalf("snapshot: %d tokens, %d certificates, CRL number %d, %d audit records, %d mailbox items",
			len(want.APITokens), len(want.IssuedCerts), want.CRLNumber, len(want.Audit), len(want.MailboxItems))
	}
	first := exportOf(t, sqlite)
	if n := bytes.Count(first, []byte(`"mailbox_data"`)); n != 4 {
		t.Errorf("%d mailbox_data lines; want 4 (3 for the large item)", n)
	}
	// Quoted: a JSON key or string, which base64 data (sealed mailbox bytes) cannot hold by chance.
	if bytes.Contains(first, []byte(`"idem`)) || bytes.Contains(first, []byte(`"secret`)) {
		t.Error("the export holds an idempotent call or a secret")
	}
	wantCounts := ImportCounts{Registrations: 3, Threads: 2, Messages: 3, Held: 2, Capabilities: 2, APITokens: 2, IssuedCerts: 2, Audit: 2, MailboxItems: 2, EvidenceOutbox: 1}
	if n := importInto(t, pg, first); n != wantCounts {
		t.Errorf("import into PostgreSQL added %+v; want %+v", n, wantCounts)
	}
	if v := tokensVersion(t, pg); v != 1 {
		t.Errorf("TopicTokens after the import = %d; want 1", v)
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
		if n := countRows(t, s, "idempotent_calls"); n != 0 {
			t.Errorf("%T: %d idempotent calls imported", s, n)
		}
		if got, err := s.NextCRLNumber(ctx); err != nil || got != 4 {
			t.Errorf("%T: NextCRLNumber after import = %d, %v; want 4", s, got, err)
		}
		if got, err := s.MailboxItem(ctx, "CAROL@example.com", "m-1"); err != nil || !bytes.Equal(got.Data, want.MailboxItems[0].Data) {
			t.Errorf("%T: MailboxItem after import: %d bytes, %v", s, len(got.Data), err)
		}
		if tok, err := s.APITokenByHash(ctx, testToken(2).Hash); err != nil || tok.Revoked.IsZero() {
			t.Errorf("%T: imported revoked token = %+v, %v", s, tok, err)
		}
	}
	if !bytes.Equal(first, second) {
		t.Error("exports of SQLite and PostgreSQL differ")
	}
}

// TestImportAPIMerges: an import into a store holding some of the rows
// carries revocations over, raises the CRL number but never lowers it, and
// appends the audit records the log lacks after its own.
func TestImportAPIMerges(t *testing.T) { forEachStore(t, testImportAPIMerges) }

func testImportAPIMerges(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	src, _ := backends[0].open(t)
	fillAPI(t, src)
	snap := snapshotOf(t, src)
	// The destination has token 2 and certificate 2 unrevoked, its own audit
	// record and one of the source's, and a CRL number beyond the source's.
	tok, cert := testToken(2), testCert(2, "dave\xff@example.com")
	own := AuditRecord{At: t14.Add(-time.Hour), Actor: "cli:x", Action: "own"}
	for _, err := range []error{s.PutAPIToken(ctx, tok), s.PutIssuedCert(ctx, cert)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []AuditRecord{own, snap.Audit[0]} {
		if _, err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := s.NextCRLNumber(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.(Importer).ImportSnapshot(ctx, snap)
	want := ImportCounts{APITokens: 2, IssuedCerts: 2, Audit: 1, MailboxItems: 2}
	if err != nil || n != want {
		t.Fatalf("ImportSnapshot = %+v, %v; want %+v (a token and a certificate added, a revocation of each carried over)", n, err, want)
	}
	if got, err := s.APITokenByHash(ctx, tok.Hash); err != nil || !got.Revoked.Equal(snap.APITokens[1].Revoked) {
		t.Errorf("token after import = %+v, %v; want revoked", got, err)
	}
	if got, err := s.IssuedCert(ctx, cert.Serial); err != nil || got.Reason != 4 || got.Revoked.IsZero() {
		t.Errorf("certificate after import = %+v, %v; want revoked, reason 4", got, err)
	}
	if got, err := s.NextCRLNumber(ctx); err != nil || got != 6 {
		t.Errorf("NextCRLNumber after importing a lower one = %d, %v; want 6", got, err)
	}
	log, err := s.AuditLog(ctx, 0, 100)
	if err != nil || len(log) != 3 || log[0].Action != own.Action || log[1].Action != snap.Audit[0].Action || log[2].Action != snap.Audit[1].Action {
		t.Errorf("audit log after import = %+v, %v; want its own two records, then the one it lacked", log, err)
	}
	if n, err := s.(Importer).ImportSnapshot(ctx, snap); err != nil || n != (ImportCounts{}) {
		t.Errorf("ImportSnapshot again = %+v, %v; want nothing added", n, err)
	}
}

// TestImportRefusesBadAPIExport: malformed lines of the new kinds are
// refused with ErrBadExport and import nothing.
func TestImportRefusesBadAPIExport(t *testing.T) {
	src, _ := backends[0].open(t)
	fillAPI(t, src)
	good := string(exportOf(t, src))
	lines := strings.SplitAfter(strings.TrimSuffix(good, "\n"), "\n")
	header, end := lines[0], lines[len(lines)-1]
	var tokenLine, mailboxLine, dataLine string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, `{"api_token"`) && tokenLine == "":
			tokenLine = l
		case strings.HasPrefix(l, `{"mailbox"`) && mailboxLine == "":
			mailboxLine = l
		case strings.HasPrefix(l, `{"mailbox_data"`) && strings.Contains(l, `"id":"bV8y"`):
			dataLine = l
		}
	}
	if tokenLine == "" || mailboxLine == "" || dataLine == "" {
		t.Fatalf("export lacks the lines the test changes:\n%s", good[:2000])
	}
	one := func(l string) string { return header + l + "\n" + `{"end":{"records":1}}` + "\n" }
	bad := map[string]string{
		"token unsorted scopes": one(strings.Replace(tokenLine, `["customers","mailbox"]`, `["mailbox","customers"]`, 1)),
		"token short hash":      one(`{"api_token":{"id":"tok_0000000000000001","name":"bg==","hash":"AAAA","scopes":["a"],"created":1,"expires":0,"revoked":0}}`),
		"token bad id":          one(`{"api_token":{"id":"x","name":"bg==","hash":"` + strings.Repeat("A", 43) + `=","scopes":["a"],"created":1,"expires":0,"revoked":0}}`),
		"cert lower serial":     one(`{"issued_cert":{"serial":"ab","address":"YUBiLmM=","fingerprint":"` + strings.Repeat("A", 64) + `","der":"AA==","not_before":1,"not_after":2,"issued":1,"revoked":0,"reason":0}}`),
		"cert reason 7":         one(`{"issued_cert":{"serial":"AB","address":"YUBiLmM=","fingerprint":"` + strings.Repeat("A", 64) + `","der":"AA==","not_before":1,"not_after":2,"issued":1,"revoked":5,"reason":7}}`),
		"crl number zero":       one(`{"crl_number":0}`),
		"crl number twice":      header + `{"crl_number":2}` + "\n" + `{"crl_number":3}` + "\n" + `{"end":{"records":2}}` + "\n",
		"audit no actor":        one(`{"audit":{"seq":1,"at":1,"actor":"","action":"YQ==","target":"","status":0,"detail":"","node":""}}`),
		"audit seq decreasing": header + `{"audit":{"seq":2,"at":1,"actor":"YQ==","action":"YQ==","target":"","status":0,"detail":"","node":""}}` + "\n" +
			`{"audit":{"seq":1,"at":1,"actor":"YQ==","action":"YQ==","target":"","status":0,"detail":"","node":""}}` + "\n" + `{"end":{"records":2}}` + "\n",
		"mailbox without data":   one(mailboxLine),
		"mailbox data, no item":  header + dataLine + `{"end":{"records":0}}` + "\n",
		"mailbox bad class":      header + strings.Replace(mailboxLine, `"class":"statement"`, `"class":"X"`, 1) + dataLine + `{"end":{"records":1}}` + "\n",
		"mailbox twice":          header + mailboxLine + mailboxLine + dataLine + `{"end":{"records":2}}` + "\n",
		"mailbox data too large": one(`{"mailbox_data":{"id":"bQ==","size":67108865,"offset":0,"data":""}}`),
		"truncated":              good[:len(good)-len(end)],
	}
	forEachStore(t, func(t *testing.T, s contract, _ func(testing.TB) contract) {
		for name, export := range bad {
			if _, err := Import(context.Background(), s.(Importer), strings.NewReader(export)); !errors.Is(err, ErrBadExport) {
				t.Errorf("%s: Import = %v; want ErrBadExport", name, err)
			}
		}
		for _, table := range []string{"api_tokens", "issued_certs", "crl_number", "audit_log", "mailbox"} {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%d rows in %s after refused imports", n, table)
			}
		}
	})
}
