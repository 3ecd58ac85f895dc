package quarantine

import "github.com/sealpost/sealpost/store"

// The embedded store is an Index; PostgreSQL gets the same line.
var _ Index = (*store.SQLite)(nil)
