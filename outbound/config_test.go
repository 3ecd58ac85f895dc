package outbound

import "maps"

// overDefaults is c laid over DefaultConfig as a configuration file's gateway section is: the
// settings c has replace the defaults, and its policies replace those of their classes only.
func overDefaults(c Config) Config {
	out := DefaultConfig()
	if c.Rules != nil {
		out.Rules = c.Rules
	}
	if c.DefaultClass != "" {
		out.DefaultClass = c.DefaultClass
	}
	if c.Prefer != "" {
		out.Prefer = c.Prefer
	}
	maps.Copy(out.Policies, c.Policies)
	return out
}
