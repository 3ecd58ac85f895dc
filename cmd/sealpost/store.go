package main

import (
	"context"
	"errors"

	"github.com/sealpost/sealpost/ops"
	"github.com/sealpost/sealpost/store"
)

// pinger is a store that can say directly whether it answers (PostgreSQL's pool).
type pinger interface {
	Ping(ctx context.Context) error
}

// pingAddress is what storePing looks up in a store without Ping: an address no customer has
// (.invalid, RFC 2606), so the answer is always "not found" while the store works.
const pingAddress = "readyz@sealpost.invalid"

// storePing is the question /readyz and sealpost_store_up ask the store: its Ping, or, for one
// without (SQLite), a read that finds nothing.
func storePing(st backend) ops.Check {
	if p, ok := st.(pinger); ok {
		return p.Ping
	}
	return func(ctx context.Context) error {
		_, err := st.Capabilities(ctx, pingAddress)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
}
