// Package gateway is the contract between sealpost's SMTP listeners (smtpd) and its pipelines
// (outbound, inbound): a listener describes its client (Client), opens a Session through a
// Handler and sends the reply a pipeline's error stands for.
//
// Invariants:
//   - The only error type that crosses from a pipeline to a listener is *Error; every reply is
//     formatted by ReplyFor, which the listener, the CLI and the logs all use. An error that is not
//     an *Error (or carries an invalid code) is "451 4.3.0" with no internal detail.
//   - Envelope addresses are judged by one rule (CheckSender, CheckRecipient) before any pipeline
//     sees them.
//
// gateway imports nothing of sealpost: it is the narrow waist between listeners and pipelines.
package gateway
