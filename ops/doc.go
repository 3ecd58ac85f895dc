// Package ops is sealpost's operations surface: Prometheus metrics and an HTTP listener for
// scrapers, health probes and queue control.
//
// Metrics (type Metrics) are github.com/prometheus/client_golang collectors in a registry of their
// own, with the Go runtime's and the process's collectors, served by promhttp. Metrics is the gateway's Observer;
// QueueObserver gives a spool's; InstrumentTimestamper wraps a TSA. sealpost's metrics are named
// sealpost_*, and their labels only ever hold classes, methods, queue names, identities and
// reasons, never addresses: each metric keeps at most a few hundred label combinations and counts
// any more under "other".
//
// The listener (type Server) serves
//
//	GET    /metrics                 the metrics
//	GET    /healthz                 200 while the process serves
//	GET    /readyz                  200 when every readiness check passes (StoreAnswers: the shared
//	                                store answers a ping), else 503 with the reasons;
//	                                its notices include each spool's entries set aside as corrupt
//	GET    /queue?queue=NAME        the entries of a spool (default "outbound")
//	GET    /queue/{id}?queue=NAME   one entry, with its recipients' states
//	GET    /queue/corrupt           what the spool set aside because it failed its checks
//	POST   /queue/{id}/retry        make an entry due now
//	DELETE /queue/{id}              remove an entry, without a DSN
//	POST   /queue/flush             make every entry due now
//
// Invariants:
//   - Every request but GET /metrics, /healthz and /readyz needs the ops token ("Authorization:
//     Bearer SECRET", see EnsureToken and WithToken), compared in constant time; a route added
//     later is covered without being listed. A request without it is answered 401 with a problem
//     body (RFC 9457) and logged, and changes nothing.
//   - It listens on a loopback address unless Config.AllowRemote says otherwise, and (on
//     loopback) answers only requests addressed to a loopback host, so a web page cannot reach it
//     by rebinding a DNS name; POST and DELETE from another origin are refused (CSRF).
//   - Answers name recipients by domain only; an address in a next hop's error text is reduced to
//     "*@domain". Nothing of a message's content is ever served.
//
// Errors: every answer is JSON; errors are {"error": "..."} with 404 for an unknown entry or queue
// and 405 (with Allow) for a wrong method; 401 is an application/problem+json body that has
// "error" too.
package ops
