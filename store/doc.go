// Package store holds the inbound state that must outlive one sealpost
// process: the key or certificate each customer registered for their
// address, support threads and the Message-IDs linked to them, the index of
// quarantined (held) inbound messages with their sealed bytes and delivery
// claims, the capabilities customers advertised in their signed replies, and
// the recipient directory (customers' certificates and OpenPGP keys); and
// for the bank's API, its customer CA and the secure mailbox: API tokens
// (hashed), idempotent calls, the audit log, issued certificates with the
// CRL number, and keyless customers' mailbox items (sealed by the caller).
// Those are written once for both databases (sqlconn.go).
//
// Writes that other nodes must act on bump a topic's version in the same
// transaction (ChangeVersions): registrations, the directory, held messages,
// API tokens.
// Watch reports changed topics, woken by polling and, on PostgreSQL, at once
// by NOTIFY, so a change on one node is in effect on the others without a
// restart.
//
// Its users declare the small interfaces they need where they use them
// (outbound.Store, inbound.Store, quarantine.Index, and the registry of the
// keys command); SQLite (pure Go, WAL mode) is the embedded default, and
// Postgres (pgx) is the store that several nodes share. Both implement them
// all, with the same semantics and errors: one contract test suite runs
// against both (store_test.go, contract_test.go).
//
// Schemas are versioned, each store its own numbering: OpenSQLite and
// OpenPostgres migrate at open (PostgreSQL under an advisory lock, so that
// nodes starting together do not race), and refuse a schema newer than the
// code with ErrSchemaTooNew.
//
// Invariants:
//   - Addresses are stored normalised (NormalizeAddress: the local part as
//     given, the domain lower-cased) and looked up by AddressKey, which
//     lower-cases the local part too: Alice@Example.COM, alice@example.com
//     and ALICE@EXAMPLE.COM are the same customer. Where stored entries differ
//     only by the case of their local part (registered under both spellings),
//     a lookup returns those spelt exactly as asked if there are any, else
//     those of every spelling. Writes in a new spelling join what is stored:
//     registering a key that a lookup of the address finds already adds
//     nothing, a new key is stored under the spelling the customer's
//     registrations have, and capabilities update the row a lookup reads.
//     So only a database from before (schema version 1) holds entries that
//     differ by case alone.
//   - Fingerprints are stored as upper-case hex without separators.
//   - Thread tokens come from crypto/rand (120 bits) so that a reply cannot
//     be linked to another customer's thread by guessing.
//   - A Message-ID belongs to at most one thread.
//   - Only a released held message is delivered (MarkDelivered).
//   - The quarantine index holds metadata and a reference only. The held
//     messages' bytes (PutHeld, for a quarantine on the shared store) arrive
//     sealed by the caller: the store never holds the key.
//
// Concurrency: implementations are safe for concurrent use. SQLite runs in
// WAL mode with a busy timeout and takes the write lock at the start of each
// transaction, so concurrent writers wait rather than fail. PostgreSQL
// serialises the writes of one address (registrations, capabilities) with a
// transaction-scoped advisory lock on its AddressKey, and makes the others
// single statements (INSERT … ON CONFLICT, UPDATE … WHERE NOT released; with
// the version bump, in one transaction), so writers on several nodes keep the
// invariants above. ClaimReleased takes rows FOR UPDATE SKIP LOCKED, so two
// nodes never claim one released message while its lease runs.
//
// Errors: lookups of something absent return an error wrapping ErrNotFound;
// writes that contradict stored state (duplicate quarantine ID, releasing a
// message twice, a Message-ID already linked elsewhere) wrap ErrConflict;
// malformed input (an address without a domain, an unknown method) wraps
// ErrInvalid. Callers branch with errors.Is.
package store
