// Package queue is sealpost's durable spool: the only place mail is written
// to disk, the delivery workers that empty it, and the next hops they deliver
// to (a smarthost over SMTP, or a Maildir).
//
// The gateway protects a message (sign, timestamp, encrypt) and only then
// calls [Spool.Put]; it answers the bank's MTA "250 queued as ID" only after
// Put returned without error. The package keeps these invariants:
//
//  1. Put returns only after the entry is complete and durable: the entry
//     (envelope, message, and an end record holding the length and SHA-256 of
//     everything before it) is written to a temporary file inside the spool,
//     fsynced, renamed into place, and the directory is fsynced. Any failure
//     returns an error wrapping [ErrSpoolWrite] and leaves no entry behind.
//  2. Open recovers what a crash left, at least once: complete entries are
//     delivered; temporary files (writes that never got their name in the
//     queue, so never a 250) are removed. An entry or state file in the queue
//     got its name only after its end record was fsynced, so one that fails
//     its checks later (truncated, changed, unreadable, wrong mode, not a file)
//     may have been acknowledged: it is never deleted but set aside in the
//     corrupt directory (0600, with a note saying why, both directories
//     fsynced), logged, and listed by [Spool.Corrupt]. An entry whose state
//     file is set aside is delivered to every recipient again.
//  3. Delivery state is kept per recipient, in a state file beside the entry
//     that is replaced with the same write-fsync-rename-dirsync discipline; the
//     message file is never rewritten. A recipient that was delivered is never
//     sent the message again, across restarts too.
//  4. Temporary failures are retried after clamp(time in queue, MinBackoff,
//     MaxBackoff) of the entry's lane with ±20% jitter; permanent failures
//     fail the recipient at once; at Message.Expires every pending recipient
//     fails with its last error. Each [Lane] has its own scanner and workers
//     for its classes, so its entries never wait behind another lane's: the
//     default workers busy with thousands of statements do not delay an OTP.
//  5. Failed recipients of a message with a non-null sender produce one RFC
//     3464 delivery status notification to that sender, sent from the null
//     sender, carrying the original header only, never the body. A message
//     from the null sender never produces one.
//  6. The spool only holds what Put is given (protected output). Logs carry
//     queue IDs, classes and recipients' domains, never bodies or full
//     addresses.
//
// Error contract: Put fails with [ErrInvalidMessage] (a bug in the caller; do
// not retry) or [ErrSpoolWrite] (the disk; answer 4xx, the sender retries).
// Queue control fails with [ErrNotFound] for an unknown ID; Put after Close
// fails with [ErrClosed]. A [NextHop]
// reports each recipient's outcome as a [*DeliveryError]; any other error is
// treated as temporary.
package queue
