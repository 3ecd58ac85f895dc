// Package pgtest gives a test binary a private PostgreSQL from Debian's
// packages (postgresql), with a fresh database for each test. The server
// itself is internal/pgserver's, which sealpost bench uses too; this package
// adds what only tests need (skipping, testing.TB, TestMain).
//
// The server starts at the first Start of the binary: initdb into a new
// directory under the system's temporary directory, then postgres itself
// (no pg_ctl, no system service) on a unix socket in that directory and on a
// free loopback port, with fsync off (the data is thrown away). TestMain
// calls Main, which stops it (fast shutdown) and removes the directory after
// the tests; should the binary die first, the server gets SIGQUIT as its
// parent-death signal. NewDatabase creates a database per test
// (CREATE DATABASE), owned by the role PasswordRole.
//
// The binaries are looked for in /usr/lib/postgresql/<version>/bin (newest
// first), where Debian installs them off PATH, then on PATH. When they are
// missing the test is skipped with a message, or fails under
// SEALPOST_INTEROP=require, as internal/interop does for other peers.
//
// initdb and postgres refuse to run as root, and tests here run as root:
// then both run as the postgres system user that Debian's package creates,
// through exec.Cmd's SysProcAttr.Credential (setuid in the child, no su or
// sudo needed), and the directory is chowned to that user. As another user
// they run as that user.
//
// Authentication: trust on the unix socket (user postgres); on the loopback
// port scram-sha-256 only, where PasswordRole logs in with Password, so a
// test can try a wrong password or the right one.
package pgtest
