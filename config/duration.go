package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in configuration in Go's syntax: "90s", "5m", "120h".
type Duration time.Duration

// MarshalText writes the duration in Go's syntax ("5m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go's duration syntax ("10m", "1h30m", "120h"); its error names the value
// and shows what is accepted.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 5m, 90s, 120h)", b)
	}
	*d = Duration(v)
	return nil
}
