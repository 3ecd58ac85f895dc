package smtpd

import (
	"bytes"

	"github.com/emersion/go-sasl"
)

// plainServer is SASL PLAIN (RFC 4616) on the server side. Its errors are *smtp.SMTPError
// replies, because go-smtp shows any other error's text to the client.
type plainServer struct {
	auth func(identity, user, password string) error
	done bool
}

var _ sasl.Server = (*plainServer)(nil)

func (p *plainServer) Next(response []byte) ([]byte, bool, error) {
	if p.done {
		return nil, true, replyAuthMalformed()
	}
	if response == nil {
		return []byte{}, false, nil // no initial response: ask for it with an empty challenge
	}
	p.done = true
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 {
		return nil, true, replyAuthMalformed()
	}
	return nil, true, p.auth(string(parts[0]), string(parts[1]), string(parts[2]))
}

// loginServer is the obsolete but widespread LOGIN mechanism: user name, then password,
// each answering a challenge (an initial response, if sent, is the user name).
type loginServer struct {
	auth func(identity, user, password string) error
	user []byte
	step int
}

var _ sasl.Server = (*loginServer)(nil)

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user, l.step = response, 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.auth("", string(l.user), string(response))
	}
	return nil, true, replyAuthMalformed()
}
