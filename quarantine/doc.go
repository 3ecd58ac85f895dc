// Package quarantine owns held inbound mail: its file format (the envelope, then the message
// exactly as received), sealing it at rest (WithSealKey), the byte store interface (Blobs: by
// default one file per message, written with the spool's fsync discipline; with WithBlobs the
// shared store, so that several nodes see one quarantine), the index interface the shared store
// implements, and the loop that delivers what an operator released.
//
// Invariants:
//   - A held message is kept as received: still encrypted when it arrived encrypted, so no
//     plaintext sealpost decrypted is ever written here.
//   - What reaches a byte store is already sealed when the quarantine has a key: no byte store
//     (a directory, a database and its dumps) sees the key or a held reply in clear.
//   - Hold returns only once the bytes are durable (file and directory fsynced, or committed)
//     and indexed; on any failure nothing stays held, so the 250 that follows a Hold is never a
//     lie.
//   - A released message is delivered at least once: its bytes are removed only after the
//     delivery succeeded, so a crash in between delivers it again rather than losing it.
//
// Errors: Hold's errors wrap ErrUnavailable (the caller answers 451); unknown IDs are
// store.ErrNotFound, a second release store.ErrConflict.
package quarantine
