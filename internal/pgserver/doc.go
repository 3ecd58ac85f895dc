// Package pgserver runs a private PostgreSQL from Debian's packages
// (postgresql) for a process that needs a throw-away one: the tests, through
// internal/pgtest, and sealpost bench -store postgres.
//
// Start runs initdb into a new directory under the system's temporary
// directory, then postgres itself (no pg_ctl, no system service) on a unix
// socket in that directory and on a free loopback port, with fsync off (the
// data is thrown away) unless Options.Durable. Stop stops it (fast
// shutdown) and removes the directory; should the process die first, the
// server gets SIGQUIT as its parent-death signal. Halt stops it keeping the
// directory and Resume starts it again there, on the same port, so that a
// test can take the database away from its clients and give it back.
//
// The binaries are looked for in /usr/lib/postgresql/<version>/bin (newest
// first), where Debian installs them off PATH, then on PATH.
//
// initdb and postgres refuse to run as root: as root, both run as the
// postgres system user that Debian's package creates, through exec.Cmd's
// SysProcAttr.Credential (setuid in the child, no su or sudo needed), and
// the directory is chowned to that user. As another user they run as that
// user.
//
// Authentication: trust on the unix socket (user postgres); on the loopback
// port scram-sha-256 only, where PasswordRole logs in with Password.
package pgserver
