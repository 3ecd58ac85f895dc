// Package smtpd is sealpost's SMTP listener: it takes mail from the bank's MTAs, enforces
// limits, TLS and AUTH, and hands each transaction to a gateway.Session. It is built on
// github.com/emersion/go-smtp and imports only gateway from sealpost.
//
// One gateway session per SMTP session: Handler.NewSession is called at the first MAIL FROM,
// when HELO, STARTTLS and AUTH are settled, with gateway.Client{Trusted: client IP in
// AllowedNetworks or authenticated}; it is called again after STARTTLS (go-smtp starts a new
// session) and after a successful AUTH, so the gateway always sees the current identity.
//
// Invariants:
//
//   - Never an open relay: a client that is neither in Config.AllowedNetworks nor
//     authenticated gets "530 5.7.0 Authentication required" at MAIL FROM (so go-smtp refuses
//     its RCPT, DATA and BDAT with 502), and nothing of its session reaches the gateway, not
//     even Handler.NewSession.
//     The one exception is a listener with Config.Public (the inbound, MX-side listener for the
//     support desk): there untrusted clients reach the handler, which accepts only the
//     addresses it serves (inbound.Pipeline: the support addresses).
//   - AUTH PLAIN and LOGIN are offered and accepted only under STARTTLS (TLS 1.2+; before it
//     go-smtp answers "523 5.7.10 TLS is required"), checked against bcrypt hashes; an unknown
//     user costs a bcrypt comparison too. The third failure on a connection ends it. AUTH
//     inside a transaction is refused (503 5.5.1).
//   - Only <CR><LF>.<CR><LF> ends DATA (go-smtp's reader). A message is read to its real end
//     before any reply. A bare CR or LF in it (DATA or BDAT) gets "550 5.5.2 bare CR or LF in
//     message (RFC 5321 2.3.8)"; over MaxMessageBytes it gets 552 5.3.4; cut short by the
//     connection ending it is dropped. In none of these cases does the gateway see it.
//   - "250 2.0.0 queued as ID" only when gateway.Session.Data returned nil.
//   - A panic in a gateway call is recovered and logged with its stack; the client gets
//     "451 4.3.0 Local error, try again later" as its last reply and the connection is closed;
//     the server goes on serving.
//   - After a read timeout or read error nothing more is read from the connection, so the rest
//     of an interrupted message is never parsed as commands.
//   - No client holds a slot by being slow. A command line must be complete within
//     CommandTimeout of its first byte (the idle wait before it is ReadTimeout); a message
//     must keep MinDataRate after MinDataRateGrace, and never pause for ReadTimeout; a session
//     ends at MaxSessionDuration. On a plain connection a command cut by a bound is dropped,
//     never executed: go-smtp only ever gets whole command lines (see trackedConn).
//   - Slots: MaxConnectionsPerClient per IP address and, for clients outside AllowedNetworks,
//     MaxConnectionsPerNetwork per IPv4 /24 or IPv6 /64 refuse a new connection (421 4.7.0).
//     When all MaxConnections slots are taken, the new connection takes the slot of the one
//     that has owed its client's input the longest: waiting for a command, since the wait
//     began; inside a message, since the time its bytes have paid for at MinDataRate (a fast
//     transfer is owed far in the future). That connection gets 421 4.4.5 and is closed.
//     A connection in a gateway call is never shed; only when every connection is in one is
//     the new one refused (421 4.7.0).
//   - Logs (log/slog) carry the session ID, client IP, sender and recipient domains, AUTH user,
//     queue IDs and reply codes; never message content, full addresses or passwords.
//
// Reply contract: every error from the gateway goes through Reply, the one mapping from
// errors to replies: a *gateway.Error (found with errors.As) gives its own code, enhanced
// code and message; any other error gives "451 4.3.0 Local error, try again later" with no
// detail, and is logged with the session ID. go-smtp takes a reply from an error by type
// assertion and would turn any other error into a 554 carrying err.Error(), so the listener
// only ever returns *smtp.SMTPError values to it.
//
// Replies for the limits ("go-smtp": the reply is go-smtp's own):
//
//	over MaxConnectionsPerClient or ...PerNetwork,     421 4.7.0 Too many connections, try again later; closed
//	  or MaxConnections with no connection to shed
//	shed: a new connection took the slot               421 4.4.5 Too busy, closing the connection that waited longest, try again later; closed
//	MAIL SIZE= over MaxMessageBytes (go-smtp)          552 5.3.4 Max message size exceeded
//	DATA message over MaxMessageBytes, after its end   552 5.3.4 Message exceeds fixed maximum message size of N bytes
//	BDAT chunk crossing MaxMessageBytes (go-smtp)      552 5.3.4 Max message size exceeded
//	RCPT beyond MaxRecipients (go-smtp)                452 4.5.3 Maximum limit of N recipients reached
//	command or DATA line over MaxLineLength            500 5.4.0 Too long line, closing connection; closed
//	no command within ReadTimeout (go-smtp)            421 4.4.2 Idle timeout, bye bye; closed
//	command not complete within CommandTimeout         421 4.4.2 Command not complete within 30s, closing connection; closed
//	message paused for ReadTimeout (DATA/BDAT)         421 4.4.2 Timeout waiting for message data, closing connection; closed
//	message below MinDataRate after the grace          421 4.4.2 Message data slower than 1024 bytes/s, closing connection; closed
//	MaxSessionDuration reached                         421 4.4.2 Session time limit (30m0s) reached, closing connection; closed
//	third failed AUTH                                  421 4.7.0 Too many authentication failures, closing connection; closed
//
// Under TLS the listener sees only TLS records, not lines: a command cut by a bound gets go-smtp's
// "421 4.4.2 Idle timeout, bye bye", and go-smtp may first execute the part of the line it had
// read (nothing can follow it: the connection is over).
//
// go-smtp behaviours to know:
//
//   - It arms ReadTimeout only when it starts waiting for a command line: without the
//     listener's own deadlines, a client sending a byte every few seconds held its slot for
//     ever, and ReadTimeout also capped a whole DATA transfer (each BDAT chunk re-armed it).
//   - Its reader (bufio.Reader.ReadLine) returns a partial line as a whole one when the read
//     under it fails, and go-smtp executes it.
//   - After it closed a connection itself ("Too many errors") it goes on reading commands; only
//     the error of SetReadDeadline on the closed connection stops it.
//   - Its DATA reader counts the message against MaxMessageBytes before it sees the end
//     marker, so via DATA a message of exactly MaxMessageBytes is refused (one byte less is
//     accepted); BDAT accepts exactly MaxMessageBytes.
//   - Its DATA reader drops a "." followed by a bare CR at the start of a line (it takes them
//     for the start of an end marker), so <CR><LF>.<CR>X reaches the listener as <CR><LF>X:
//     no bare CR is left to refuse, and the input stays one message (see TestSmuggling).
//   - It reads ahead under the line limit even where BDAT chunk data follows the command, so
//     a BDAT chunk with a line over MaxLineLength may end the connection with 500 5.4.0.
//   - When a client disconnects right after a BDAT command whose chunk is empty, go-smtp's BDAT
//     goroutine may dereference the cleared session; go-smtp recovers that panic itself and
//     logs it (here at error level); the connection is already gone.
package smtpd
