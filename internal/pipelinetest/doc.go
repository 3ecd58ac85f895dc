// Package pipelinetest holds what the outbound and inbound pipelines' tests share: one bank with
// real keys (a data directory, an S/MIME customer, an OpenPGP customer, an embedded TSA), a spool
// that records what is queued, and a driver for one SMTP transaction through a gateway.Handler.
// Test helpers only: no production package imports it.
package pipelinetest
