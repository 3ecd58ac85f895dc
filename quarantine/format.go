package quarantine

import (
	"bytes"
	"errors"
	"strings"
)

// magic starts a held file: the envelope, then the message exactly as received.
const magic = "sealpost-held-v1\r\n"

// encode writes a held file: magic, the envelope sender, the recipients, the message.
func encode(from string, to []string, msg []byte) []byte {
	env := magic + from + "\r\n" + strings.Join(to, " ") + "\r\n"
	return append([]byte(env), msg...)
}

// Parse splits a held file into its envelope and the message as received.
func Parse(b []byte) (from string, to []string, msg []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok {
		return "", nil, nil, errors.New("not a held message file")
	}
	f, rest, ok1 := bytes.Cut(rest, []byte("\r\n"))
	t, rest, ok2 := bytes.Cut(rest, []byte("\r\n"))
	to = strings.Fields(string(t))
	if !ok1 || !ok2 || len(to) == 0 {
		return "", nil, nil, errors.New("held message file without its envelope")
	}
	return string(f), to, rest, nil
}
