package outbound

import "github.com/sealpost/sealpost/store"

// The embedded store is one that outbound can use; PostgreSQL gets the same lines.
var (
	_ Threads      = (*store.SQLite)(nil)
	_ Capabilities = (*store.SQLite)(nil)
	_ Store        = (*store.SQLite)(nil)
)
