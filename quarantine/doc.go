// Package quarantine owns held inbound mail: its file format (the envelope, then the message
// exactly as received), its byte store (one file per message, written with the spool's fsync
// discipline), the index interface the shared store implements, and the loop that delivers what an
// operator released.
//
// Invariants:
//   - A held message is kept as received: still encrypted when it arrived encrypted, so no
//     plaintext sealpost decrypted is ever written here.
//   - Hold returns only once the bytes are durable (file and directory fsynced) and indexed; on
//     any failure nothing stays held, so the 250 that follows a Hold is never a lie.
//   - A released message is delivered at least once: its bytes are removed only after the
//     delivery succeeded, so a crash in between delivers it again rather than losing it.
//
// Errors: Hold's errors wrap ErrUnavailable (the caller answers 451); unknown IDs are
// store.ErrNotFound, a second release store.ErrConflict.
package quarantine
