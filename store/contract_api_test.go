package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Contract tests of the API tokens, idempotent calls, audit log, issued
// certificates and secure mailbox, run on both backends.

var t14 = time.Date(2026, 4, 1, 8, 0, 0, 123456789, time.UTC)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func tokenID(i int) string { return fmt.Sprintf("tok_%016d", i) }

func testToken(i int) APIToken {
	return APIToken{ID: tokenID(i), Name: fmt.Sprintf("online banking %d", i), Hash: hashOf(fmt.Sprint("secret", i)),
		Scopes: []string{"mailbox", "customers"}, Created: t14.Add(time.Duration(i) * time.Second)}
}

// tokensVersion is the version of TopicTokens that other reads.
func tokensVersion(t *testing.T, other contract) int64 {
	t.Helper()
	v, err := other.ChangeVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v[TopicTokens]
}

// TestAPITokens: tokens round-trip (scopes sorted and without duplicates)
// and are seen by another handle; IDs and hashes are unique; revoking is
// once; lookups of what is not there are ErrNotFound; the writes that
// change a token bump TopicTokens and no failed one does.
func TestAPITokens(t *testing.T) { forEachStore(t, testAPITokens) }

func testAPITokens(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	if got, err := s.APITokens(ctx); err != nil || got == nil || len(got) != 0 {
		t.Errorf("APITokens of an empty store = %#v, %v; want empty", got, err)
	}
	b := testToken(2)
	b.Scopes = []string{"otp", "admin", "otp"}
	b.Expires = t14.Add(24 * time.Hour)
	a := testToken(1)
	for _, tok := range []APIToken{b, a} {
		if err := s.PutAPIToken(ctx, tok); err != nil {
			t.Fatalf("PutAPIToken(%s): %v", tok.ID, err)
		}
	}
	if v := tokensVersion(t, other); v != 2 {
		t.Errorf("TopicTokens after two puts = %d; want 2", v)
	}
	wantB := b
	wantB.Scopes = []string{"admin", "otp"}
	wantA := a
	wantA.Scopes = []string{"customers", "mailbox"}
	if got, err := other.APITokenByHash(ctx, b.Hash); err != nil || !reflect.DeepEqual(got, wantB) {
		t.Errorf("APITokenByHash = %+v, %v; want %+v", got, err, wantB)
	}
	if got, err := other.APITokens(ctx); err != nil || !reflect.DeepEqual(got, []APIToken{wantA, wantB}) {
		t.Errorf("APITokens = %+v, %v; want a then b", got, err)
	}
	sameID, sameHash := testToken(3), testToken(4)
	sameID.ID, sameHash.Hash = a.ID, a.Hash
	for _, tok := range []APIToken{a, sameID, sameHash} {
		if err := s.PutAPIToken(ctx, tok); !errors.Is(err, ErrConflict) {
			t.Errorf("PutAPIToken of a taken ID or hash: %v; want ErrConflict", err)
		}
	}
	for _, h := range [][]byte{nil, hashOf("nope"), a.Hash[:31], append(slices.Clone(a.Hash), 0)} {
		if _, err := s.APITokenByHash(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("APITokenByHash(%x): %v; want ErrNotFound", h, err)
		}
	}
	if err := other.RevokeAPIToken(ctx, a.ID, t14.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.APITokenByHash(ctx, a.Hash); err != nil || !got.Revoked.Equal(t14.Add(time.Hour)) {
		t.Errorf("revoked token = %+v, %v", got, err)
	}
	if err := s.RevokeAPIToken(ctx, a.ID, time.Time{}); !errors.Is(err, ErrConflict) {
		t.Errorf("RevokeAPIToken again: %v; want ErrConflict", err)
	}
	if err := s.RevokeAPIToken(ctx, tokenID(9), time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIToken of an unknown token: %v; want ErrNotFound", err)
	}
	if err := s.RevokeAPIToken(ctx, "tok_", time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("RevokeAPIToken of a malformed ID: %v; want ErrInvalid", err)
	}
	if v := tokensVersion(t, other); v != 3 {
		t.Errorf("TopicTokens after two puts, a revocation and failed writes = %d; want 3", v)
	}
}

// TestAPITokensInvalid: malformed tokens are ErrInvalid and store nothing.
func TestAPITokensInvalid(t *testing.T) { forEachStore(t, testAPITokensInvalid) }

func testAPITokensInvalid(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	for name, change := range map[string]func(*APIToken){
		"no ID":          func(t *APIToken) { t.ID = "" },
		"ID no prefix":   func(t *APIToken) { t.ID = "abc_0123456789abcdef" },
		"ID short":       func(t *APIToken) { t.ID = "tok_0123456789abcde" },
		"ID long":        func(t *APIToken) { t.ID = "tok_0123456789abcdefg" },
		"ID upper":       func(t *APIToken) { t.ID = "tok_0123456789ABCDEF" },
		"no name":        func(t *APIToken) { t.Name = "" },
		"name too long":  func(t *APIToken) { t.Name = strings.Repeat("ä", maxTokenName+1) },
		"name control":   func(t *APIToken) { t.Name = "a\nb" },
		"name not UTF-8": func(t *APIToken) { t.Name = "a\xffb" },
		"short hash":     func(t *APIToken) { t.Hash = t.Hash[:31] },
		"no scopes":      func(t *APIToken) { t.Scopes = nil },
		"empty scope":    func(t *APIToken) { t.Scopes = []string{""} },
		"upper scope":    func(t *APIToken) { t.Scopes = []string{"Admin"} },
		"spaced scope":   func(t *APIToken) { t.Scopes = []string{"a b"} },
		"long scope":     func(t *APIToken) { t.Scopes = []string{strings.Repeat("a", maxScope+1)} },
		"many scopes": func(t *APIToken) {
			t.Scopes = nil
			for i := range maxTokenScopes + 1 {
				t.Scopes = append(t.Scopes, strings.Repeat("a", i+1))
			}
		},
	} {
		tok := testToken(1)
		change(&tok)
		if err := s.PutAPIToken(ctx, tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutAPIToken = %v; want ErrInvalid", name, err)
		}
	}
	long := testToken(1)
	long.Name = strings.Repeat("ä", maxTokenName)
	long.Scopes = []string{strings.Repeat("z", maxScope)}
	if err := s.PutAPIToken(ctx, long); err != nil {
		t.Errorf("PutAPIToken at the limits: %v", err)
	}
	if n := countRows(t, s, "api_tokens"); n != 1 {
		t.Errorf("%d tokens stored; want the one at the limits", n)
	}
}

// TestRevokeRaces: of two handles revoking one token, or one issued
// certificate, at once, one succeeds and the other gets ErrConflict.
func TestRevokeRaces(t *testing.T) { forEachStore(t, testRevokeRaces) }

func testRevokeRaces(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	for i := range 10 {
		if err := s.PutAPIToken(ctx, testToken(i)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutIssuedCert(ctx, testCert(i, "a@b.c")); err != nil {
			t.Fatal(err)
		}
		oneWins(t, handles, func(h contract) error { return h.RevokeAPIToken(ctx, tokenID(i), time.Time{}) })
		oneWins(t, handles, func(h contract) error { return h.RevokeIssuedCert(ctx, serialOf(i), time.Time{}, 1) })
	}
}

// oneWins runs write on every handle at once and checks that one succeeded
// and the others got ErrConflict.
func oneWins(t *testing.T, handles []contract, write func(contract) error) {
	t.Helper()
	errs := make([]error, len(handles))
	var wg sync.WaitGroup
	for h := range handles {
		wg.Go(func() { errs[h] = write(handles[h]) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrConflict):
			t.Errorf("concurrent write: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent writes succeeded; want 1 (the others ErrConflict): %v", ok, len(handles), errs)
	}
}

// TestIdempotent: a call begins fresh once, is finished once, and a retry
// reads its response; a pending call can be abandoned (and begun again), a
// finished one not; expiry removes the old ones; malformed input stores
// nothing.
func TestIdempotent(t *testing.T) { forEachStore(t, testIdempotent) }

func testIdempotent(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	call := IdempotentCall{TokenID: tokenID(1), Key: "key 1 ~!", RequestHash: hashOf("POST /v1/x {}"), Created: t14,
		Status: 201, Body: []byte("ignored")}
	pending := IdempotentCall{TokenID: call.TokenID, Key: call.Key, RequestHash: call.RequestHash, Created: t14}
	got, fresh, err := s.BeginIdempotent(ctx, call)
	if err != nil || !fresh || !reflect.DeepEqual(got, pending) {
		t.Fatalf("BeginIdempotent = %+v, %v, %v; want %+v, fresh", got, fresh, err, pending)
	}
	retry := call
	retry.RequestHash, retry.Created = hashOf("other body"), t14.Add(time.Minute)
	if got, fresh, err := other.BeginIdempotent(ctx, retry); err != nil || fresh || !reflect.DeepEqual(got, pending) {
		t.Errorf("BeginIdempotent again = %+v, %v, %v; want the pending call, not fresh", got, fresh, err)
	}
	if err := other.FinishIdempotent(ctx, call.TokenID, "other key", 200, "", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishIdempotent of no call: %v; want ErrNotFound", err)
	}
	body := []byte(`{"id":"x"}` + "\x00\xff")
	if err := other.FinishIdempotent(ctx, call.TokenID, call.Key, 201, "application/json", body); err != nil {
		t.Fatal(err)
	}
	finished := pending
	finished.Status, finished.ContentType, finished.Body = 201, "application/json", body
	if got, fresh, err := s.BeginIdempotent(ctx, call); err != nil || fresh || !reflect.DeepEqual(got, finished) {
		t.Errorf("BeginIdempotent after finishing = %+v, %v, %v; want %+v", got, fresh, err, finished)
	}
	if err := s.FinishIdempotent(ctx, call.TokenID, call.Key, 200, "", nil); !errors.Is(err, ErrConflict) {
		t.Errorf("FinishIdempotent again: %v; want ErrConflict", err)
	}
	if err := s.AbandonIdempotent(ctx, call.TokenID, call.Key); !errors.Is(err, ErrConflict) {
		t.Errorf("AbandonIdempotent of a finished call: %v; want ErrConflict", err)
	}
	// Another token's call with the same key is another call.
	second := IdempotentCall{TokenID: tokenID(2), Key: call.Key, RequestHash: call.RequestHash, Created: t14.Add(time.Hour)}
	if _, fresh, err := s.BeginIdempotent(ctx, second); err != nil || !fresh {
		t.Fatalf("BeginIdempotent of another token = %v, %v; want fresh", fresh, err)
	}
	if err := other.AbandonIdempotent(ctx, second.TokenID, second.Key); err != nil {
		t.Fatal(err)
	}
	if err := other.AbandonIdempotent(ctx, second.TokenID, second.Key); err != nil {
		t.Errorf("AbandonIdempotent of nothing: %v", err)
	}
	if _, fresh, err := s.BeginIdempotent(ctx, second); err != nil || !fresh {
		t.Errorf("BeginIdempotent after abandoning = %v, %v; want fresh", fresh, err)
	}
	if err := s.FinishIdempotent(ctx, second.TokenID, second.Key, 204, "", nil); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.BeginIdempotent(ctx, second); err != nil || got.Status != 204 || got.Body != nil {
		t.Errorf("call finished without a body = %+v, %v", got, err)
	}
	if n, err := other.ExpireIdempotent(ctx, t14.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("ExpireIdempotent = %d, %v; want 1", n, err)
	}
	if _, fresh, err := s.BeginIdempotent(ctx, call); err != nil || !fresh {
		t.Errorf("BeginIdempotent after expiry = %v, %v; want fresh", fresh, err)
	}
	if n := countRows(t, s, "idempotent_calls"); n != 2 {
		t.Errorf("%d calls stored; want 2", n)
	}
}

// TestIdempotentInvalid: malformed calls and responses are ErrInvalid and
// change nothing.
func TestIdempotentInvalid(t *testing.T) { forEachStore(t, testIdempotentInvalid) }

func testIdempotentInvalid(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	good := IdempotentCall{TokenID: tokenID(1), Key: strings.Repeat("k", maxIdemKey), RequestHash: hashOf("r")}
	for name, change := range map[string]func(*IdempotentCall){
		"bad token":  func(c *IdempotentCall) { c.TokenID = "tok_x" },
		"no key":     func(c *IdempotentCall) { c.Key = "" },
		"long key":   func(c *IdempotentCall) { c.Key += "k" },
		"key CR":     func(c *IdempotentCall) { c.Key = "a\rb" },
		"key UTF-8":  func(c *IdempotentCall) { c.Key = "ä" },
		"short hash": func(c *IdempotentCall) { c.RequestHash = c.RequestHash[:16] },
		"no hash":    func(c *IdempotentCall) { c.RequestHash = nil },
	} {
		c := good
		change(&c)
		if _, _, err := s.BeginIdempotent(ctx, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: BeginIdempotent = %v; want ErrInvalid", name, err)
		}
		if err := s.FinishIdempotent(ctx, c.TokenID, c.Key, 200, "", nil); len(c.RequestHash) == sha256Size && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: FinishIdempotent = %v; want ErrInvalid", name, err)
		}
	}
	if n := countRows(t, s, "idempotent_calls"); n != 0 {
		t.Errorf("%d calls stored after refused ones", n)
	}
	if _, _, err := s.BeginIdempotent(ctx, good); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"status 0":        func() error { return s.FinishIdempotent(ctx, good.TokenID, good.Key, 0, "", nil) },
		"status 600":      func() error { return s.FinishIdempotent(ctx, good.TokenID, good.Key, 600, "", nil) },
		"content type LF": func() error { return s.FinishIdempotent(ctx, good.TokenID, good.Key, 200, "a\nb", nil) },
		"long content type": func() error {
			return s.FinishIdempotent(ctx, good.TokenID, good.Key, 200, strings.Repeat("a", 256), nil)
		},
		"body over 1 MiB": func() error {
			return s.FinishIdempotent(ctx, good.TokenID, good.Key, 200, "", make([]byte, maxIdemBody+1))
		},
		"abandon bad key": func() error { return s.AbandonIdempotent(ctx, good.TokenID, "") },
	} {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
	if got, _, err := s.BeginIdempotent(ctx, good); err != nil || got.Status != 0 {
		t.Errorf("after refused responses the call = %+v, %v; want pending", got, err)
	}
	if err := s.FinishIdempotent(ctx, good.TokenID, good.Key, 200, "text/plain", make([]byte, maxIdemBody)); err != nil {
		t.Errorf("FinishIdempotent of 1 MiB: %v", err)
	}
}

// TestIdempotentRace: of two handles beginning one call at once, exactly
// one is fresh, and the other reads the call the first stored.
func TestIdempotentRace(t *testing.T) { forEachStore(t, testIdempotentRace) }

func testIdempotentRace(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t), reopen(t)}
	for i := range 20 {
		key := fmt.Sprint("k", i)
		type result struct {
			call  IdempotentCall
			fresh bool
			err   error
		}
		res := make([]result, len(handles))
		var wg sync.WaitGroup
		for h := range handles {
			wg.Go(func() {
				c := IdempotentCall{TokenID: tokenID(1), Key: key, RequestHash: hashOf(fmt.Sprint(h)), Created: t14}
				res[h].call, res[h].fresh, res[h].err = handles[h].BeginIdempotent(ctx, c)
			})
		}
		wg.Wait()
		fresh := -1
		for h, r := range res {
			if r.err != nil {
				t.Fatalf("BeginIdempotent(%s) on handle %d: %v", key, h, r.err)
			}
			if r.fresh {
				if fresh >= 0 {
					t.Fatalf("BeginIdempotent(%s): handles %d and %d both fresh", key, fresh, h)
				}
				fresh = h
			}
		}
		if fresh < 0 {
			t.Fatalf("BeginIdempotent(%s): no handle fresh", key)
		}
		for h, r := range res {
			if !bytes.Equal(r.call.RequestHash, hashOf(fmt.Sprint(fresh))) {
				t.Errorf("BeginIdempotent(%s) on handle %d returned another call than the fresh one's", key, h)
			}
		}
	}
}

// TestAudit: records round-trip byte for byte under increasing Seqs, are
// read after a Seq up to a limit, and fields out of their limits are
// ErrInvalid and store nothing.
func TestAudit(t *testing.T) { forEachStore(t, testAudit) }

func testAudit(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	if got, err := s.AuditLog(ctx, 0, 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("AuditLog of an empty store = %#v, %v; want empty", got, err)
	}
	var want []AuditRecord
	for i := range 5 {
		r := AuditRecord{At: t14.Add(time.Duration(i) * time.Second), Actor: "token:" + tokenID(i), Action: "PUT /v1/customers/{address}/keys",
			Target: fmt.Sprintf("c%d\xff@example.com", i), Status: 200 + i, Detail: "fingerprint AB\x00", Node: "node-a"}
		if i == 4 {
			r = AuditRecord{At: r.At, Actor: "cli:root", Action: "api token revoke"}
		}
		h := []contract{s, other}[i%2]
		seq, err := h.AppendAudit(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 && seq <= want[len(want)-1].Seq {
			t.Errorf("Seq %d after %d", seq, want[len(want)-1].Seq)
		}
		r.Seq = seq
		want = append(want, r)
	}
	if got, err := other.AuditLog(ctx, 0, 10000); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("AuditLog = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.AuditLog(ctx, want[1].Seq, 2); err != nil || !reflect.DeepEqual(got, want[2:4]) {
		t.Errorf("AuditLog(after %d, 2) = %+v, %v; want %+v", want[1].Seq, got, err, want[2:4])
	}
	if got, err := s.AuditLog(ctx, want[4].Seq, 1); err != nil || len(got) != 0 {
		t.Errorf("AuditLog after the last = %+v, %v; want empty", got, err)
	}
	for _, limit := range []int{0, -1, maxAuditRead + 1} {
		if _, err := s.AuditLog(ctx, 0, limit); !errors.Is(err, ErrInvalid) {
			t.Errorf("AuditLog limit %d: %v; want ErrInvalid", limit, err)
		}
	}
	ok := AuditRecord{Actor: "a", Action: "b"}
	for name, change := range map[string]func(*AuditRecord){
		"no actor":    func(r *AuditRecord) { r.Actor = "" },
		"long actor":  func(r *AuditRecord) { r.Actor = strings.Repeat("a", maxAuditActor+1) },
		"no action":   func(r *AuditRecord) { r.Action = "" },
		"long action": func(r *AuditRecord) { r.Action = strings.Repeat("a", maxAuditAction+1) },
		"long target": func(r *AuditRecord) { r.Target = strings.Repeat("a", maxAuditTarget+1) },
		"long detail": func(r *AuditRecord) { r.Detail = strings.Repeat("a", maxAuditDetail+1) },
		"long node":   func(r *AuditRecord) { r.Node = strings.Repeat("a", maxAuditNode+1) },
		"status 42":   func(r *AuditRecord) { r.Status = 42 },
		"status 600":  func(r *AuditRecord) { r.Status = 600 },
	} {
		r := ok
		change(&r)
		if _, err := s.AppendAudit(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: AppendAudit = %v; want ErrInvalid", name, err)
		}
	}
	if n := countRows(t, s, "audit_log"); n != len(want) {
		t.Errorf("%d audit records; want %d", n, len(want))
	}
	full := AuditRecord{Actor: strings.Repeat("a", maxAuditActor), Action: strings.Repeat("b", maxAuditAction),
		Target: strings.Repeat("c", maxAuditTarget), Detail: strings.Repeat("d", maxAuditDetail), Node: strings.Repeat("e", maxAuditNode), Status: 599}
	if _, err := s.AppendAudit(ctx, full); err != nil {
		t.Errorf("AppendAudit at the limits: %v", err)
	}
}

// TestAuditConcurrent: appends from several goroutines on two handles get
// distinct Seqs, and a reader following the log with AuditLog(after) while
// they run sees every record, in order, once.
func TestAuditConcurrent(t *testing.T) { forEachStore(t, testAuditConcurrent) }

func testAuditConcurrent(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := handles[w%2].AppendAudit(ctx, AuditRecord{Actor: fmt.Sprint("w", w), Action: fmt.Sprint(i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	var seen []AuditRecord
	follow := func() {
		for {
			after := int64(0)
			if len(seen) > 0 {
				after = seen[len(seen)-1].Seq
			}
			got, err := handles[1].AuditLog(ctx, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				return
			}
			seen = append(seen, got...)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("the follower saw %d records; want %d", len(seen), writers*each)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq <= seen[i-1].Seq {
			t.Fatalf("Seq %d after %d", seen[i].Seq, seen[i-1].Seq)
		}
	}
}

func serialOf(i int) string { return fmt.Sprintf("%X", 0x1000+i) }

func testCert(i int, addr string) IssuedCert {
	der := []byte(fmt.Sprint("DER of certificate ", i, "\x00\xff"))
	fp := sha256.Sum256(der)
	return IssuedCert{Serial: serialOf(i), Address: addr, Fingerprint: fmt.Sprintf("%X", fp), DER: der,
		NotBefore: t14, NotAfter: t14.AddDate(1, 0, 0), Issued: t14.Add(time.Duration(i) * time.Minute)}
}

// TestIssuedCerts: issued certificates round-trip, are found by serial in
// any spelling and listed by customer (by AddressKey) or all; serials are
// unique; revoking is once, with a valid reason; RevokedCerts lists the
// revoked ones by revocation time.
func TestIssuedCerts(t *testing.T) { forEachStore(t, testIssuedCerts) }

func testIssuedCerts(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	if got, err := s.IssuedCerts(ctx, ""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("IssuedCerts of an empty store = %#v, %v", got, err)
	}
	c1, c2, c3 := testCert(1, "Alice@Example.COM"), testCert(2, "bob@example.com"), testCert(3, "alice@example.com")
	c1.Serial, c1.Fingerprint = "00abc", strings.ToLower(c1.Fingerprint)
	for _, c := range []IssuedCert{c3, c1, c2} {
		if err := s.PutIssuedCert(ctx, c); err != nil {
			t.Fatalf("PutIssuedCert(%s): %v", c.Serial, err)
		}
	}
	want1 := c1
	want1.Serial, want1.Address, want1.Fingerprint = "ABC", "Alice@example.com", strings.ToUpper(c1.Fingerprint)
	for _, serial := range []string{"ABC", "abc", "0ABC"} {
		if got, err := other.IssuedCert(ctx, serial); err != nil || !reflect.DeepEqual(got, want1) {
			t.Errorf("IssuedCert(%s) = %+v, %v; want %+v", serial, got, err, want1)
		}
	}
	if got, err := other.IssuedCerts(ctx, "ALICE@example.com"); err != nil || !reflect.DeepEqual(got, []IssuedCert{want1, c3}) {
		t.Errorf("IssuedCerts(alice) = %+v, %v", got, err)
	}
	if got, err := other.IssuedCerts(ctx, ""); err != nil || !reflect.DeepEqual(got, []IssuedCert{want1, c2, c3}) {
		t.Errorf("IssuedCerts(\"\") = %+v, %v", got, err)
	}
	if got, err := other.IssuedCerts(ctx, "carol@example.com"); err != nil || len(got) != 0 {
		t.Errorf("IssuedCerts(carol) = %+v, %v; want none", got, err)
	}
	if _, err := other.IssuedCerts(ctx, "no-domain"); !errors.Is(err, ErrInvalid) {
		t.Errorf("IssuedCerts of a malformed address: %v; want ErrInvalid", err)
	}
	taken := testCert(9, "x@y.z")
	taken.Serial = "0ABC"
	if err := s.PutIssuedCert(ctx, taken); !errors.Is(err, ErrConflict) {
		t.Errorf("PutIssuedCert of a taken serial: %v; want ErrConflict", err)
	}
	if _, err := s.IssuedCert(ctx, "FFFF"); !errors.Is(err, ErrNotFound) {
		t.Errorf("IssuedCert of an unknown serial: %v; want ErrNotFound", err)
	}
	if err := other.RevokeIssuedCert(ctx, c3.Serial, t14.Add(time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeIssuedCert(ctx, "abc", t14.Add(2*time.Hour), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeIssuedCert(ctx, c3.Serial, t14.Add(3*time.Hour), 0); !errors.Is(err, ErrConflict) {
		t.Errorf("RevokeIssuedCert again: %v; want ErrConflict", err)
	}
	if err := s.RevokeIssuedCert(ctx, "FFFF", time.Time{}, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeIssuedCert of an unknown serial: %v; want ErrNotFound", err)
	}
	for _, reason := range []int{-1, 7, 11} {
		if err := s.RevokeIssuedCert(ctx, c2.Serial, time.Time{}, reason); !errors.Is(err, ErrInvalid) {
			t.Errorf("RevokeIssuedCert reason %d: %v; want ErrInvalid", reason, err)
		}
	}
	got, err := other.RevokedCerts(ctx)
	if err != nil || len(got) != 2 || got[0].Serial != c3.Serial || got[0].Reason != 1 || !got[0].Revoked.Equal(t14.Add(time.Hour)) ||
		got[1].Serial != "ABC" || got[1].Reason != 4 {
		t.Errorf("RevokedCerts = %+v, %v; want c3 (reason 1) then ABC (reason 4)", got, err)
	}
	if c, err := s.IssuedCert(ctx, c2.Serial); err != nil || !c.Revoked.IsZero() || c.Reason != 0 {
		t.Errorf("the certificate refused revocations were made on = %+v, %v", c, err)
	}
}

// TestIssuedCertsInvalid: malformed certificates are ErrInvalid and store
// nothing.
func TestIssuedCertsInvalid(t *testing.T) { forEachStore(t, testIssuedCertsInvalid) }

func testIssuedCertsInvalid(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	for name, change := range map[string]func(*IssuedCert){
		"no serial":         func(c *IssuedCert) { c.Serial = "" },
		"serial not hex":    func(c *IssuedCert) { c.Serial = "12G" },
		"serial too long":   func(c *IssuedCert) { c.Serial = strings.Repeat("F", maxSerial+1) },
		"bad address":       func(c *IssuedCert) { c.Address = "alice" },
		"short fingerprint": func(c *IssuedCert) { c.Fingerprint = c.Fingerprint[:40] },
		"fingerprint not hex": func(c *IssuedCert) {
			c.Fingerprint = strings.Repeat("X", sha256Hex)
		},
		"no DER":           func(c *IssuedCert) { c.DER = nil },
		"DER too large":    func(c *IssuedCert) { c.DER = make([]byte, maxIssuedDER+1) },
		"no NotBefore":     func(c *IssuedCert) { c.NotBefore = time.Time{} },
		"no NotAfter":      func(c *IssuedCert) { c.NotAfter = time.Time{} },
		"inverted":         func(c *IssuedCert) { c.NotAfter = c.NotBefore.Add(-time.Second) },
		"reason unrevoked": func(c *IssuedCert) { c.Reason = 1 },
		"reason 7":         func(c *IssuedCert) { c.Revoked, c.Reason = t14, 7 },
	} {
		c := testCert(1, "a@b.c")
		change(&c)
		if err := s.PutIssuedCert(ctx, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutIssuedCert = %v; want ErrInvalid", name, err)
		}
	}
	for _, serial := range []string{"", "xyz", strings.Repeat("1", maxSerial+1)} {
		if _, err := s.IssuedCert(ctx, serial); !errors.Is(err, ErrInvalid) {
			t.Errorf("IssuedCert(%q): %v; want ErrInvalid", serial, err)
		}
	}
	big := testCert(1, "a@b.c")
	big.Serial, big.DER = "0", make([]byte, maxIssuedDER)
	if err := s.PutIssuedCert(ctx, big); err != nil {
		t.Errorf("PutIssuedCert at the limits: %v", err)
	}
	if n := countRows(t, s, "issued_certs"); n != 1 {
		t.Errorf("%d certificates stored; want the one at the limits", n)
	}
}

// TestNextCRLNumber: CRL numbers drawn from several goroutines on two
// handles are 1 to N, each once, increasing for each drawer.
func TestNextCRLNumber(t *testing.T) { forEachStore(t, testNextCRLNumber) }

func testNextCRLNumber(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	handles := []contract{s, reopen(t)}
	const drawers, each = 6, 20
	got := make([][]int64, drawers)
	errs := make([]error, drawers)
	var wg sync.WaitGroup
	for d := range drawers {
		wg.Go(func() {
			for range each {
				n, err := handles[d%2].NextCRLNumber(ctx)
				if err != nil {
					errs[d] = err
					return
				}
				got[d] = append(got[d], n)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var all []int64
	for d, ns := range got {
		if !slices.IsSorted(ns) || len(slices.Compact(slices.Clone(ns))) != len(ns) {
			t.Errorf("drawer %d got %v; want increasing", d, ns)
		}
		all = append(all, ns...)
	}
	slices.Sort(all)
	for i, n := range all {
		if n != int64(i+1) {
			t.Fatalf("CRL numbers %v; want 1 to %d once each", all, drawers*each)
		}
	}
}

func testItem(id, addr string, i int) MailboxItem {
	return MailboxItem{ID: id, Address: addr, Class: "statement", Received: t14.Add(time.Duration(i) * time.Minute),
		Expires: time.Now().Add(time.Hour).Round(0).UTC(), Size: 1000 + i, Data: []byte("sealed\x00\xff" + id)}
}

// TestMailbox: items round-trip, their lists leave out Data and expired
// items; another customer's item is not found, to read or to mark; marking
// read keeps the first time; counts and expiry.
func TestMailbox(t *testing.T) { forEachStore(t, testMailbox) }

func testMailbox(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	other := reopen(t)
	if got, err := s.MailboxItems(ctx, "a@b.c"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("MailboxItems of an empty store = %#v, %v", got, err)
	}
	a2, a1, b1 := testItem("a-2", "Alice@Example.com", 2), testItem("a_1", "alice@example.com", 1), testItem("B1", "bob@example.com", 0)
	old := testItem("old", "alice@example.com", 0)
	old.Expires = time.Now().Add(-time.Second)
	for _, m := range []MailboxItem{a2, a1, b1, old} {
		if err := s.PutMailboxItem(ctx, m); err != nil {
			t.Fatalf("PutMailboxItem(%s): %v", m.ID, err)
		}
	}
	want2 := a2
	want2.Address = "Alice@example.com"
	listed := []MailboxItem{a1, want2}
	for i := range listed {
		listed[i].Data = nil
	}
	if got, err := other.MailboxItems(ctx, "ALICE@example.com"); err != nil || !reflect.DeepEqual(got, listed) {
		t.Errorf("MailboxItems(alice) = %+v, %v; want %+v", got, err, listed)
	}
	if got, err := other.MailboxItem(ctx, "alice@EXAMPLE.com", "a-2"); err != nil || !reflect.DeepEqual(got, want2) {
		t.Errorf("MailboxItem = %+v, %v; want %+v", got, err, want2)
	}
	for _, q := range [][2]string{{"alice@example.com", "B1"}, {"bob@example.com", "a_1"}, {"alice@example.com", "old"}, {"alice@example.com", "none"}} {
		if _, err := other.MailboxItem(ctx, q[0], q[1]); !errors.Is(err, ErrNotFound) {
			t.Errorf("MailboxItem(%s, %s): %v; want ErrNotFound", q[0], q[1], err)
		}
		if err := other.MarkMailboxRead(ctx, q[0], q[1], time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkMailboxRead(%s, %s): %v; want ErrNotFound", q[0], q[1], err)
		}
	}
	if w, r, err := s.MailboxCounts(ctx); err != nil || w != 3 || r != 0 {
		t.Errorf("MailboxCounts = %d, %d, %v; want 3 waiting, 0 read", w, r, err)
	}
	first := t14.Add(time.Hour)
	if err := s.MarkMailboxRead(ctx, "alice@example.com", "a_1", first); err != nil {
		t.Fatal(err)
	}
	if err := other.MarkMailboxRead(ctx, "ALICE@example.com", "a_1", first.Add(time.Hour)); err != nil {
		t.Errorf("MarkMailboxRead again: %v", err)
	}
	if got, err := s.MailboxItem(ctx, "alice@example.com", "a_1"); err != nil || !got.Read.Equal(first) {
		t.Errorf("read item = %+v, %v; want Read %v", got, err, first)
	}
	if w, r, err := other.MailboxCounts(ctx); err != nil || w != 2 || r != 1 {
		t.Errorf("MailboxCounts = %d, %d, %v; want 2 waiting, 1 read", w, r, err)
	}
	if err := s.PutMailboxItem(ctx, testItem("a_1", "carol@example.com", 0)); !errors.Is(err, ErrConflict) {
		t.Errorf("PutMailboxItem of a taken ID: %v; want ErrConflict", err)
	}
	if n, err := other.ExpireMailbox(ctx, time.Now()); err != nil || n != 1 {
		t.Errorf("ExpireMailbox = %d, %v; want 1 (old)", n, err)
	}
	if n, err := other.ExpireMailbox(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 3 {
		t.Errorf("ExpireMailbox later = %d, %v; want 3", n, err)
	}
	if n := countRows(t, s, "mailbox"); n != 0 {
		t.Errorf("%d items left after expiry", n)
	}
}

// TestMailboxInvalid: malformed items are ErrInvalid and store nothing.
func TestMailboxInvalid(t *testing.T) { forEachStore(t, testMailboxInvalid) }

func testMailboxInvalid(t *testing.T, s contract, _ func(testing.TB) contract) {
	ctx := context.Background()
	for name, change := range map[string]func(*MailboxItem){
		"no ID":         func(m *MailboxItem) { m.ID = "" },
		"long ID":       func(m *MailboxItem) { m.ID = strings.Repeat("a", maxMailboxID+1) },
		"ID with dot":   func(m *MailboxItem) { m.ID = "a.b" },
		"ID with slash": func(m *MailboxItem) { m.ID = "a/b" },
		"bad address":   func(m *MailboxItem) { m.Address = "@b.c" },
		"no class":      func(m *MailboxItem) { m.Class = "" },
		"upper class":   func(m *MailboxItem) { m.Class = "Statement" },
		"long class":    func(m *MailboxItem) { m.Class = strings.Repeat("a", maxClass+1) },
		"no expiry":     func(m *MailboxItem) { m.Expires = time.Time{} },
		"negative size": func(m *MailboxItem) { m.Size = -1 },
		"no data":       func(m *MailboxItem) { m.Data = nil },
		"too large":     func(m *MailboxItem) { m.Data = make([]byte, maxMailboxData+1) },
	} {
		m := testItem("x", "a@b.c", 0)
		change(&m)
		if err := s.PutMailboxItem(ctx, m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutMailboxItem = %v; want ErrInvalid", name, err)
		}
	}
	if n := countRows(t, s, "mailbox"); n != 0 {
		t.Errorf("%d items stored after refused ones", n)
	}
	for _, q := range [][2]string{{"a@b.c", ""}, {"a@b.c", "a b"}, {"nodomain", "x"}} {
		if _, err := s.MailboxItem(ctx, q[0], q[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("MailboxItem(%q, %q): %v; want ErrInvalid", q[0], q[1], err)
		}
		if err := s.MarkMailboxRead(ctx, q[0], q[1], time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("MarkMailboxRead(%q, %q): %v; want ErrInvalid", q[0], q[1], err)
		}
	}
	if _, err := s.MailboxItems(ctx, "nodomain"); !errors.Is(err, ErrInvalid) {
		t.Errorf("MailboxItems of a malformed address: %v; want ErrInvalid", err)
	}
}

// TestMailboxLarge: an item of 64 MiB, the limit, round-trips.
func TestMailboxLarge(t *testing.T) { forEachStore(t, testMailboxLarge) }

func testMailboxLarge(t *testing.T, s contract, reopen func(testing.TB) contract) {
	if testing.Short() {
		t.Skip("64 MiB item")
	}
	ctx := context.Background()
	m := testItem("big", "a@b.c", 0)
	m.Data = bytes.Repeat([]byte("0123456789abcdef"), maxMailboxData/16)
	m.Data[12345] = 0
	if err := s.PutMailboxItem(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := reopen(t).MailboxItem(ctx, "a@b.c", "big"); err != nil || !bytes.Equal(got.Data, m.Data) {
		t.Errorf("MailboxItem: %d bytes, %v; want %d", len(got.Data), err, len(m.Data))
	}
}
