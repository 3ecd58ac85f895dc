package config_test

import (
	"fmt"
	"time"

	"github.com/sealpost/sealpost/config"
)

// listener is a component's configuration section as the operator writes it.
type listener struct {
	Addr        string          `json:"addr"`
	ReadTimeout config.Duration `json:"read_timeout"`
	MaxRcpts    int             `json:"max_recipients"`
}

// Decode reads a section strictly and reports every problem at once, each a *FieldError with
// the setting's path, re-rooted under the section's name with Prefix.
func ExampleDecode() {
	var l listener
	err := config.Decode([]byte(`{"addr": "127.0.0.1:2525", "read_timout": "5m", "max_recipients": "100"}`), &l)
	for _, fe := range config.FieldErrors(config.Prefix("smtp", err)) {
		fmt.Printf("%s: %s\n", fe.Path, fe.Problem)
	}
	fmt.Println("addr kept:", l.Addr)

	if err := config.Decode([]byte(`{"read_timeout": "30s", "max_recipients": 10}`), &l); err != nil {
		fmt.Println(err)
	}
	fmt.Println(time.Duration(l.ReadTimeout), l.MaxRcpts)
	// Output:
	// smtp.read_timout: unknown key (did you mean "read_timeout"?)
	// smtp.max_recipients: "100" is a string, want a number
	// addr kept: 127.0.0.1:2525
	// 30s 10
}
