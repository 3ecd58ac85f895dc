// Package address holds how sealpost reads and compares email addresses, in one place: every
// package that checks, stores, looks up or logs an address uses these rules.
//
//   - Normalize is the form that is shown and stored: the local part as the customer wrote it, the
//     domain in lower case.
//   - Key is the form that is looked up: the normalised address in lower case, local part
//     included. RFC 5321 lets a mailbox provider treat local parts case-sensitively, but none of
//     the large ones does, and customers type their addresses as they like: Alice@Example.COM is
//     alice@example.com's mailbox.
//   - Same says whether two addresses have the same key.
//   - Split and Domain take an address apart at its last "@"; Domain and Domains give the only
//     part of an address that logs and metrics may carry.
//
// Invariant: a string with a control character anywhere (C0, DEL, C1) is never a valid address,
// even where trimming would have removed it. Errors wrap ErrInvalid.
//
// The store keeps its own copy of the folding (store.AddressKey: it imports no other sealpost
// package), and a test in package keys checks that both agree on a table of addresses: change
// them together, with a schema migration that recomputes stored keys. The package imports nothing
// of sealpost.
package address
