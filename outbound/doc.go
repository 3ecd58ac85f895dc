// Package outbound is sealpost's outbound pipeline: it classifies each message (statement, OTP, support),
// applies the class's policy per recipient, protects the message (S/MIME or PGP/MIME, signed,
// timestamped, encrypted) and queues only the protected output.
//
// Invariants:
//   - A recipient of a class that requires encryption and has no usable key is refused at RCPT
//     (550 5.7.1 with the reason); nothing of such mail is ever queued in clear.
//   - Data returns a queue ID only after every protected copy is durably queued; otherwise nothing
//     stays queued and the error says whether the client should retry (451) or not (5xx).
//   - A TSA or spool failure is 451: the bank's MTA retries, nothing is lost, nothing goes out
//     unsigned.
//   - A Sealpost-Class header is honoured only from authenticated submitters and always removed.
//   - Logs carry queue IDs, classes and recipients' domains, never bodies or codes.
//
// Errors returned by Session methods are *gateway.Error values with their SMTP reply.
package outbound
