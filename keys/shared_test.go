package keys

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// sharedKeys is a shared directory held in memory, standing in for the store (which keys may not
// import; cmd/sealpost tests the real one), with what StoredForm wrote.
type sharedKeys struct {
	mu   sync.Mutex
	keys map[string]StoredKey
	err  error
}

func (s *sharedKeys) StoredKeys(context.Context) ([]StoredKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []StoredKey
	for _, k := range s.keys {
		out = append(out, k)
	}
	return out, nil
}

func (s *sharedKeys) existing(fp string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[fp]; ok {
		return k.Data, nil
	}
	return nil, nil
}

func (s *sharedKeys) put(t *testing.T, data []byte) Imported {
	t.Helper()
	imp, err := ParseImport(data, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored, merged, err := StoredForm(imp, s.existing)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]StoredKey{}
	}
	for _, k := range stored {
		s.keys[k.Fingerprint] = k
	}
	return merged
}

func TestDirectoryFromSharedKeys(t *testing.T) {
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ca.NewDevCustomer("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	src := &sharedKeys{}
	src.put(t, EncodeCertificates(bob.Certificate()))
	carol := newTestPGPKey(t, pgpSpec{addrs: []string{"carol@example.org"}})
	armored, err := EncodePGPPublicKeys(carol)
	if err != nil {
		t.Fatal(err)
	}
	src.put(t, armored)

	if d, err := dir.Directory(); err != nil {
		t.Fatal(err)
	} else if _, err := d.Lookup("bob@example.com"); err == nil {
		t.Fatal("the files alone know bob, whose certificate is only in the shared directory")
	}
	d, err := dir.DirectoryFrom(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := d.Lookup("bob@example.com"); err != nil || !c.Equal(bob.Certificate()) {
		t.Fatalf("bob from the shared directory: %v, %v", c, err)
	}
	if _, err := d.LookupPGP("carol@example.org"); err != nil {
		t.Fatalf("carol's OpenPGP key from the shared directory: %v", err)
	}

	// The same certificate under recipients/ and in the store is one entry, not two.
	if _, err := dir.Import(EncodeCertificates(bob.Certificate()), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if d, err = dir.DirectoryFrom(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range d.Entries() {
		if e.Certificate != nil && e.Certificate.Equal(bob.Certificate()) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob's certificate in recipients/ and the store: %d entries, want 1", n)
	}
}

func TestDirectoryFromRefusesUnreadableSharedKeys(t *testing.T) {
	dir := DataDir(t.TempDir())
	src := &sharedKeys{keys: map[string]StoredKey{"AB": {Method: MethodPGP, Fingerprint: "AB", Data: []byte("not a key")}}}
	if _, err := dir.DirectoryFrom(context.Background(), src); err == nil || !strings.Contains(err.Error(), "stored OpenPGP key AB") {
		t.Fatalf("a stored key that does not parse: %v, want it named", err)
	}
	down := errors.New("store down")
	src = &sharedKeys{err: down}
	if _, err := dir.DirectoryFrom(context.Background(), src); !errors.Is(err, down) {
		t.Fatalf("the shared directory unreadable: %v, want its error", err)
	}
}

// TestStoredFormMergesWithTheStoredCopy: importing a key again with a new user ID keeps the user
// IDs the stored copy has, as a file import merges with recipients/.
func TestStoredFormMergesWithTheStoredCopy(t *testing.T) {
	first := newTestPGPKey(t, pgpSpec{addrs: []string{"dave@example.org"}})
	armored, err := EncodePGPPublicKeys(first)
	if err != nil {
		t.Fatal(err)
	}
	src := &sharedKeys{}
	src.put(t, armored)
	if err := first.AddUserId("Dave", "", "dave@work.example", PGPConfig()); err != nil {
		t.Fatal(err)
	}
	newer, err := EncodePGPPublicKeys(first)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the first user ID from what is imported the second time: the stored copy still has it.
	imp, err := ParseImport(newer, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(imp.PGPKeys[0].Identities, "Test Customer <dave@example.org>")
	stored, merged, err := StoredForm(imp, src.existing)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || len(merged.PGPKeys) != 1 {
		t.Fatalf("stored %d keys, merged %d, want 1 each", len(stored), len(merged.PGPKeys))
	}
	got, err := ParsePGPKeys(stored[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	addrs := PGPAddresses(got[0], first.PrimaryKey.CreationTime.AddDate(0, 0, 1))
	if strings.Join(addrs, ",") != "dave@example.org,dave@work.example" {
		t.Fatalf("merged key names %v, want both user IDs", addrs)
	}

	bad := map[string]StoredKey{stored[0].Fingerprint: {Data: []byte("garbage")}}
	src.keys = bad
	if _, _, err := StoredForm(imp, src.existing); err == nil {
		t.Fatal("merging with a stored copy that does not parse succeeded")
	}
}

func TestWatcherReloadReadsTheSharedDirectory(t *testing.T) {
	dir, ca := watchedDir(t)
	src := &sharedKeys{}
	h := &directoryHolder{}
	w := NewWatcher(dir, []DirectoryUser{h}, WithSource(src))
	erin, err := ca.NewDevCustomer("erin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	src.put(t, EncodeCertificates(erin.Certificate()))
	if err := w.Reload(context.Background(), "store change"); err != nil {
		t.Fatal(err)
	}
	d, _ := h.get()
	if _, err := d.Lookup("erin@example.com"); err != nil {
		t.Fatalf("erin after a reload: %v", err)
	}
	if _, err := d.Lookup("alice@example.com"); err != nil {
		t.Fatalf("alice (recipients/) after a reload with a shared directory: %v", err)
	}
}
