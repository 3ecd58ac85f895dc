package keys

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/logtest"
)

// directoryHolder is a DirectoryUser that keeps what it was handed, as the pipelines do, and
// says so on set when the test made it.
type directoryHolder struct {
	mu  sync.Mutex
	d   *Directory
	n   int
	set chan struct{}
}

func (h *directoryHolder) SetDirectory(d *Directory) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.d, h.n = d, h.n+1
	if h.set != nil {
		select {
		case h.set <- struct{}{}:
		default:
		}
	}
}

func (h *directoryHolder) get() (*Directory, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.d, h.n
}

// watchedDir is an initialised data directory with alice's certificate imported, and its CA.
func watchedDir(t *testing.T) (DataDir, *Identity) {
	t.Helper()
	dir := DataDir(t.TempDir())
	if err := dir.Init([]string{"statements@bank.example"}); err != nil {
		t.Fatal(err)
	}
	ca, err := dir.Identity("ca")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ca.NewDevCustomer("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Import(EncodeCertificates(alice.Certificate()), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir, ca
}

// TestWatcherReloadsOnFileChange: a certificate imported while the watcher runs reaches every
// user without a request, and the log names the trigger.
func TestWatcherReloadsOnFileChange(t *testing.T) {
	dir, ca := watchedDir(t)
	log, logs := logtest.New()
	a, b := &directoryHolder{}, &directoryHolder{set: make(chan struct{}, 1)}
	w := NewWatcher(dir, []DirectoryUser{a, b}, WithLogger(log), WithWatchInterval(20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop := func() { cancel(); <-done }
	defer stop()
	time.Sleep(60 * time.Millisecond)
	if _, n := a.get(); n != 0 {
		t.Fatalf("the watcher reloaded %d times with nothing changed", n)
	}
	bob, err := ca.NewDevCustomer("bob@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Import(EncodeCertificates(bob.Certificate()), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// A tick may fall inside the import (its temporary file is a change too): wait for the
	// reload that has bob; the last user is handed the directory after the first.
	for hasBob := false; !hasBob; {
		select {
		case <-b.set:
			d, _ := b.get()
			_, err := d.Lookup("bob@example.net")
			hasBob = err == nil
		case <-time.After(30 * time.Second):
			t.Fatal("gave up waiting for the reload with bob")
		}
	}
	for _, u := range []*directoryHolder{a, b} {
		d, _ := u.get()
		if d == nil {
			t.Fatal("a user was not handed the reloaded directory")
		}
		if got, err := d.Lookup("bob@example.net"); err != nil || !got.Equal(bob.Certificate()) {
			t.Fatalf("bob after reload: %v", err)
		}
	}
	stop() // the reload logs after it hands the directory over
	if !strings.Contains(logs.String(), `trigger="file change"`) || !strings.Contains(logs.String(), "certificates=2") {
		t.Fatalf("the reload's log does not name its trigger and count the certificates:\n%s", logs)
	}
}

// TestWatcherKeepsOldDirectoryOnBadFile: a broken file in recipients/ is refused as a whole; the
// users keep what they had and the log says why; once the file is fixed, the reload goes through.
func TestWatcherKeepsOldDirectoryOnBadFile(t *testing.T) {
	dir, _ := watchedDir(t)
	log, logs := logtest.New()
	before, err := dir.Directory()
	if err != nil {
		t.Fatal(err)
	}
	u := &directoryHolder{d: before}
	w := NewWatcher(dir, []DirectoryUser{u}, WithLogger(log))
	bad := filepath.Join(string(dir), "recipients", "broken.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = w.Reload(context.Background(), "request")
	if err == nil || !strings.Contains(logs.String(), "previous one stays in use") || !strings.Contains(logs.String(), "broken.pem") {
		t.Fatalf("bad file: %v\n%s", err, logs)
	}
	if d, n := u.get(); n != 0 || d != before {
		t.Fatalf("the user was handed a directory (%d times) after a refused reload", n)
	}
	if _, err := before.Lookup("alice@example.com"); err != nil {
		t.Fatalf("alice after a refused reload: %v", err)
	}
	os.Remove(bad)
	if err := w.Reload(context.Background(), "request"); err != nil {
		t.Fatal(err)
	}
	if d, n := u.get(); n != 1 || d == before {
		t.Fatalf("the fixed reload did not reach the user (%d times)", n)
	}
}

// TestWatcherReloadAfterStop: Reload with a finished context reloads nothing.
func TestWatcherReloadAfterStop(t *testing.T) {
	dir, _ := watchedDir(t)
	u := &directoryHolder{}
	w := NewWatcher(dir, []DirectoryUser{u}, WithLogger(nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Reload(ctx, "request"); err == nil {
		t.Fatal("Reload with a cancelled context went through")
	}
	if _, n := u.get(); n != 0 {
		t.Fatalf("the user was handed a directory %d times", n)
	}
}
