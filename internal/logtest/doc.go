// Package logtest captures log output in tests, so that tests can assert what logs contain and,
// above all, what they never contain (bodies, codes, keys, customers' addresses).
package logtest
