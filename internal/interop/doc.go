// Package interop lets tests run real peers (openssl, gpg, sq, cmsutil, swaks) the same way everywhere.
//
// A test that needs a peer calls Tool. When the peer is not installed the test is skipped with a message
// naming the Debian package to install, unless SEALPOST_INTEROP=require is set (CI sets it), in which case
// the test fails: an interop test must never pass silently because its peer was missing.
package interop
