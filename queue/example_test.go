package queue_test

import (
	"context"
	"fmt"
	"github.com/sealpost/sealpost/config"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sealpost/sealpost/queue"
)

// A message put in the spool is on disk (fsynced) when Put returns; a worker delivers it to the
// next hop, here a Maildir, and removes it from the spool.
func ExampleSpool_Put() {
	dir, err := os.MkdirTemp("", "spool-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	maildir := &queue.Maildir{Dir: filepath.Join(dir, "Maildir")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := queue.DefaultConfig()
	cfg.Dir, cfg.ScanInterval = filepath.Join(dir, "spool"), config.Duration(10*time.Millisecond)
	spool, err := queue.Open(cfg, maildir, queue.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spool.Start(ctx)
	defer spool.Close()

	_, err = spool.Put(ctx, &queue.Message{
		From:       "statements@bank.example",
		Recipients: []string{"alice@example.com"},
		Data:       []byte("From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n"),
		Class:      "statement",
		Expires:    time.Now().Add(time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(maildir.Dir, "new", "*"))
		if len(files) == 1 {
			b, _ := os.ReadFile(files[0])
			fmt.Printf("%q\n", b)
			return
		}
	}
	fmt.Println("not delivered")
	// Output:
	// "From: statements@bank.example\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nHello\r\n"
}
