package inbound

import "github.com/sealpost/sealpost/store"

// The embedded store is one that inbound can use; PostgreSQL gets the same lines.
var (
	_ Registry     = (*store.SQLite)(nil)
	_ Threads      = (*store.SQLite)(nil)
	_ Capabilities = (*store.SQLite)(nil)
	_ Store        = (*store.SQLite)(nil)
)
