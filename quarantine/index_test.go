package quarantine

import "github.com/sealpost/sealpost/store"

// Both stores are an Index and can keep the held bytes (Blobs).
var (
	_ Index = (*store.SQLite)(nil)
	_ Index = (*store.Postgres)(nil)
	_ Blobs = (*store.SQLite)(nil)
	_ Blobs = (*store.Postgres)(nil)
	_ Blobs = (*files)(nil)
)
