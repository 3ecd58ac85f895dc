package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestEvidenceIndex: records indexed under each of their addresses (normalized, once each) are
// found by address across nodes, newest first, at most limit; indexing again changes nothing and
// the mark never moves back; pruning removes one node's rows before a seq; hostile or malformed
// input is ErrInvalid and stores nothing.
func TestEvidenceIndex(t *testing.T) { forEachStore(t, testEvidenceIndex) }

func testEvidenceIndex(t *testing.T, s contract, reopen func(testing.TB) contract) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	item := func(node string, seq uint64, min int, kind, qid, summary string, addrs ...string) IndexedEvidence {
		return IndexedEvidence{EvidenceEntry: EvidenceEntry{Node: node, Seq: seq, Time: t0.Add(time.Duration(min) * time.Minute),
			Kind: kind, QueueID: qid, Summary: summary}, Addresses: addrs}
	}
	if n, err := s.EvidenceIndexed(ctx, "a"); err != nil || n != 0 {
		t.Fatalf("a fresh store's index mark: %d, %v", n, err)
	}
	a := []IndexedEvidence{
		item("a", 0, 0, "outbound", "Q1", "statement smime", "Alice@Example.COM", "bob@example.com", "alice@example.com"),
		item("a", 1, 1, "delivery", "Q1", "delivered 250", "alice@example.com"),
		item("a", 2, 2, "delivery", "Q1", "delivered 250", "bob@example.com"),
	}
	if err := s.IndexEvidence(ctx, "a", 3, a); err != nil {
		t.Fatal(err)
	}
	b := []IndexedEvidence{item("b", 7, 3, "inbound", "", "reply signed", "alice@example.com")}
	if err := s.IndexEvidence(ctx, "b", 9, b); err != nil {
		t.Fatal(err)
	}
	got, err := reopen(t).EvidenceAbout(ctx, "ALICE@example.com", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b/7 inbound  reply signed", "a/1 delivery Q1 delivered 250", "a/0 outbound Q1 statement smime"}
	if len(got) != len(want) {
		t.Fatalf("alice's records: %+v; want %v", got, want)
	}
	for i, e := range got {
		if line := e.Node + "/" + string(rune('0'+e.Seq)) + " " + e.Kind + " " + e.QueueID + " " + e.Summary; line != want[i] {
			t.Errorf("alice's record %d: %q; want %q", i, line, want[i])
		}
	}
	if !got[2].Time.Equal(t0) {
		t.Errorf("time %v; want %v", got[2].Time, t0)
	}
	if got, err := s.EvidenceAbout(ctx, "alice@example.com", 1); err != nil || len(got) != 1 || got[0].Node != "b" {
		t.Fatalf("alice's newest record: %+v, %v", got, err)
	}
	if got, err := s.EvidenceAbout(ctx, "carol@example.org", 10); err != nil || len(got) != 0 {
		t.Fatalf("nobody's records: %+v, %v", got, err)
	}
	// Indexing again (an indexer that restarts before its mark was saved) keeps one row each, and
	// an older mark does not move the saved one back.
	if err := s.IndexEvidence(ctx, "a", 2, a[:2]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EvidenceIndexed(ctx, "a"); err != nil || n != 3 {
		t.Fatalf("a's mark after indexing again: %d, %v; want 3", n, err)
	}
	if n, err := s.EvidenceIndexed(ctx, "b"); err != nil || n != 9 {
		t.Fatalf("b's mark: %d, %v; want 9", n, err)
	}
	if got, _ := s.EvidenceAbout(ctx, "alice@example.com", 10); len(got) != 3 {
		t.Fatalf("alice's records after indexing again: %d; want 3", len(got))
	}
	if err := s.PruneEvidenceIndex(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.EvidenceAbout(ctx, "alice@example.com", 10); len(got) != 2 || got[1].Seq != 1 {
		t.Fatalf("alice's records after pruning a before 1: %+v", got)
	}
	if got, _ := s.EvidenceAbout(ctx, "bob@example.com", 10); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("bob's records after pruning a before 1: %+v", got)
	}

	long := strings.Repeat("x", 2049)
	for name, bad := range map[string]func() error{
		"other node's record": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("b", 10, 0, "outbound", "", "", "c@example.org")})
		},
		"record past the mark": func() error {
			return s.IndexEvidence(ctx, "a", 10, []IndexedEvidence{item("a", 10, 0, "outbound", "", "", "c@example.org")})
		},
		"no time": func() error {
			it := item("a", 10, 0, "outbound", "", "", "c@example.org")
			it.Time = time.Time{}
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{it})
		},
		"no kind": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("a", 10, 0, "", "", "", "c@example.org")})
		},
		"control in kind": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("a", 10, 0, "out\nbound", "", "", "c@example.org")})
		},
		"control in queue ID": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("a", 10, 0, "outbound", "Q\x00", "", "c@example.org")})
		},
		"long summary": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("a", 10, 0, "outbound", "", long, "c@example.org")})
		},
		"malformed address": func() error {
			return s.IndexEvidence(ctx, "a", 20, []IndexedEvidence{item("a", 10, 0, "outbound", "", "", "c@example.org", "<script>")})
		},
		"no node":          func() error { return s.IndexEvidence(ctx, "", 20, nil) },
		"too many":         func() error { return s.IndexEvidence(ctx, "a", 20000, make([]IndexedEvidence, 10001)) },
		"about no address": func() error { _, err := s.EvidenceAbout(ctx, "not an address", 10); return err },
		"about limit 0":    func() error { _, err := s.EvidenceAbout(ctx, "c@example.org", 0); return err },
		"about limit 501":  func() error { _, err := s.EvidenceAbout(ctx, "c@example.org", 501); return err },
		"indexed no node":  func() error { _, err := s.EvidenceIndexed(ctx, ""); return err },
		"prune no node":    func() error { return s.PruneEvidenceIndex(ctx, "", 1) },
	} {
		if err := bad(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
	if got, _ := s.EvidenceAbout(ctx, "c@example.org", 10); len(got) != 0 {
		t.Fatalf("refused input stored rows: %+v", got)
	}
	if n, _ := s.EvidenceIndexed(ctx, "a"); n != 3 {
		t.Fatalf("refused input moved a's mark to %d", n)
	}
}

// BenchmarkEvidenceIndex: indexing records in the indexer's batches of 1,000 (one address each,
// per record), and the console's lookup of a customer's newest 50 among 200,000 indexed records
// of 20,000 customers (per lookup).
func BenchmarkEvidenceIndex(b *testing.B) {
	ctx := context.Background()
	batch := func(first, n int) []IndexedEvidence {
		items := make([]IndexedEvidence, n)
		for i := range items {
			seq := first + i
			items[i] = IndexedEvidence{EvidenceEntry: EvidenceEntry{Node: "a", Seq: uint64(seq), Time: time.Unix(int64(seq), 0),
				Kind: "delivery", QueueID: fmt.Sprintf("Q%08d", seq), Summary: "delivered 250 2.0.0 Ok: queued as 4XYZ (mx.example.com)"},
				Addresses: []string{fmt.Sprintf("customer%d@example.com", seq%20000)}}
		}
		return items
	}
	b.Run("index", func(b *testing.B) {
		s, _ := openTemp(b)
		next := 0
		b.ResetTimer()
		for b.Loop() {
			if err := s.IndexEvidence(ctx, "a", uint64(next+1000), batch(next, 1000)); err != nil {
				b.Fatal(err)
			}
			next += 1000
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next)/1e3, "µs/record")
	})
	b.Run("about", func(b *testing.B) {
		s, _ := openTemp(b)
		for first := 0; first < 200000; first += 10000 {
			if err := s.IndexEvidence(ctx, "a", uint64(first+10000), batch(first, 10000)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		i := 0
		for b.Loop() {
			got, err := s.EvidenceAbout(ctx, fmt.Sprintf("customer%d@example.com", i%20000), 50)
			if err != nil || len(got) != 10 {
				b.Fatalf("%d records, %v; want 10", len(got), err)
			}
			i++
		}
	})
}
