// Package evidence is the bank's tamper-evident evidence log, after Certificate Transparency
// (RFC 9162): what sealpost sent, to whom and when, what the next hop answered, what customers
// replied and what operators did with held mail — never bodies, codes or keys.
//
// Records are appended to a chain: each names its position (seq) and the hash of the record
// before it (prev), so an edited, removed or reordered record breaks the chain where it happened.
// Every interval (or so many records) a checkpoint is added: the Merkle tree head over all records
// so far (RFC 9162 2.1 hashing), signed with the bank's key and timestamped by the TSA, so that a
// third party can check with openssl that a record was in the log at that time (an inclusion
// proof, RFC 9162 2.1.3). A record is durable when Append returns: outbound mail gets no 250
// before it.
//
// Where records live is a Backend: append-only files in the data directory (FileBackend, the
// embedded default) or, for several nodes, PostgreSQL, one chain per node.
package evidence
