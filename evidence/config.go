package evidence

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/config"
)

// Config is the evidence section of the configuration.
type Config struct {
	// Enabled keeps the evidence log (default on: no outbound message is accepted without its
	// record).
	Enabled bool `json:"enabled"`
	// Node names this node's chain (default: the host name). Each node keeps its own chain.
	Node string `json:"node"`
	// CheckpointInterval and CheckpointRecords: a checkpoint is made when either has passed since
	// the last one (default 60 s, 10,000 records), if there are records since.
	CheckpointInterval config.Duration `json:"checkpoint_interval"`
	CheckpointRecords  int             `json:"checkpoint_records"`
	// SegmentRecords starts a new file at the first checkpoint after this many records
	// (default 100,000): the unit that pruning removes.
	SegmentRecords int `json:"segment_records"`
	// Retention is how long records are kept after the checkpoint that covers them (default ten
	// years); the gateway prunes whole segments past it every hour, keeping every checkpoint. 0
	// keeps everything.
	Retention config.Duration `json:"retention"`
}

// TenYears is the default retention.
const TenYears = 87660 * time.Hour // 3652.5 days

// DefaultConfig: on, checkpoints every 60 s or 10,000 records, segments of 100,000 records, kept
// ten years.
func DefaultConfig() Config {
	return Config{Enabled: true, CheckpointInterval: config.Duration(time.Minute), CheckpointRecords: 10000,
		SegmentRecords: 100000, Retention: config.Duration(TenYears)}
}

// Validate checks c; problems are *config.FieldError under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	bad := func(path, problem string) {
		errs = append(errs, &config.FieldError{Path: prefix + path, Problem: problem})
	}
	if d := time.Duration(c.CheckpointInterval); d < time.Second || d > 24*time.Hour {
		bad("checkpoint_interval", "from 1s to 24h (e.g. \"60s\")")
	}
	if c.CheckpointRecords < 1 || c.CheckpointRecords > 10_000_000 {
		bad("checkpoint_records", "from 1 to 10000000")
	}
	if c.SegmentRecords < 1000 || c.SegmentRecords > 100_000_000 {
		bad("segment_records", "from 1000 to 100000000")
	}
	if d := time.Duration(c.Retention); d != 0 && (d < 24*time.Hour || d > 10*TenYears) {
		bad("retention", "0 (keep everything) or from 24h to 100 years (e.g. \"87660h\", ten years)")
	}
	if len(c.Node) > 64 || strings.ContainsAny(c.Node, " \t\r\n/\\") {
		bad("node", fmt.Sprintf("%q: at most 64 characters, no spaces or slashes", c.Node))
	}
	return errors.Join(errs...)
}
