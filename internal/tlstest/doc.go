// Package tlstest makes a throw-away self-signed TLS certificate for loopback servers in tests
// (the SMTP listener's STARTTLS, a smarthost sink).
package tlstest
