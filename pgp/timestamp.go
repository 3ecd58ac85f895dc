package pgp

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// TimestampNotation names the notation that carries an RFC 3161 TimeStampToken (DER) in the
// UNHASHED subpacket area of an OpenPGP signature. Its message imprint is SHA-256 of the signature
// value — for RSA, the signature integer as big-endian bytes without leading zeros (the MPI body) —
// so the token is bound to that exact signature, as id-aa-timeStampToken is in CMS. It cannot be a
// hashed subpacket: it is made after, and over, the signature. Verifiers that do not know it ignore
// it (it is not flagged critical); `sealpost timestamp extract` writes the token and the signature
// value out for `openssl ts -verify`.
const TimestampNotation = "rfc3161-timestamp-token@sealpost"

// SignatureValue returns the bytes a timestamp token covers: the RSA signature integer.
func SignatureValue(sig *packet.Signature) ([]byte, error) {
	if sig.RSASignature == nil {
		return nil, fmt.Errorf("%w: only RSA signatures carry sealpost timestamps", ErrUnsupported)
	}
	return sig.RSASignature.Bytes(), nil
}

// TimestampToken returns the token in sig's unhashed TimestampNotation, or nil. go-crypto parses
// unhashed notations but does not expose them, so the signature is serialised again (which writes
// its subpackets back as parsed) and read here.
func TimestampToken(sig *packet.Signature) []byte {
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		return nil
	}
	tok, _ := unhashedNotation(b.Bytes(), TimestampNotation)
	return tok
}

// unhashedNotation returns the value of the first binary notation called name in the unhashed
// subpackets of the v4 signature packet pkt.
func unhashedNotation(pkt []byte, name string) ([]byte, error) {
	_, hdrLen, bodyLen, err := packetHeader(pkt)
	if err != nil {
		return nil, err
	}
	if hdrLen+bodyLen > len(pkt) {
		return nil, fmt.Errorf("%w: truncated signature packet", ErrMalformed)
	}
	body := pkt[hdrLen : hdrLen+bodyLen]
	if len(body) < 8 || body[0] != 4 {
		return nil, fmt.Errorf("%w: not a v4 signature", ErrUnsupported)
	}
	uOff := 6 + int(binary.BigEndian.Uint16(body[4:6]))
	if len(body) < uOff+2 {
		return nil, fmt.Errorf("%w: truncated signature packet", ErrMalformed)
	}
	end := uOff + 2 + int(binary.BigEndian.Uint16(body[uOff:uOff+2]))
	if len(body) < end {
		return nil, fmt.Errorf("%w: truncated signature packet", ErrMalformed)
	}
	for sub := body[uOff+2 : end]; len(sub) > 0; {
		n, l, ok := readSubpacketLength(sub)
		if !ok || n == 0 || l+n > len(sub) {
			return nil, fmt.Errorf("%w: bad subpacket length", ErrMalformed)
		}
		data := sub[l : l+n]
		sub = sub[l+n:]
		if data[0]&0x7f != 20 {
			continue
		}
		nName, nValue, err := notationParts(data)
		if err != nil {
			return nil, err
		}
		if data[1]&0x80 == 0 && string(nName) == name { // binary, not human-readable
			return nValue, nil
		}
	}
	return nil, nil
}

// checkSubpackets walks a subpacket area and fails on a malformed length, including a notation
// whose name and value lengths do not add up.
func checkSubpackets(area []byte) error {
	for len(area) > 0 {
		n, l, ok := readSubpacketLength(area)
		if !ok || n == 0 || l+n > len(area) {
			return fmt.Errorf("%w: bad subpacket length", ErrMalformed)
		}
		if data := area[l : l+n]; data[0]&0x7f == 20 {
			if _, _, err := notationParts(data); err != nil {
				return err
			}
		}
		area = area[l+n:]
	}
	return nil
}

// notationParts splits a notation data subpacket (type octet first) into name and value.
func notationParts(data []byte) (name, value []byte, err error) {
	if len(data) < 9 {
		return nil, nil, fmt.Errorf("%w: bad notation length", ErrMalformed)
	}
	nameLen, valueLen := int(binary.BigEndian.Uint16(data[5:7])), int(binary.BigEndian.Uint16(data[7:9]))
	if 9+nameLen+valueLen != len(data) {
		return nil, nil, fmt.Errorf("%w: bad notation length", ErrMalformed)
	}
	return data[9 : 9+nameLen], data[9+nameLen:], nil
}

// readSubpacketLength decodes a subpacket length: the length n and how many bytes l encode it.
func readSubpacketLength(b []byte) (n, l int, ok bool) {
	switch {
	case len(b) == 0:
		return 0, 0, false
	case b[0] < 192:
		return int(b[0]), 1, true
	case b[0] < 255:
		if len(b) < 2 {
			return 0, 0, false
		}
		return (int(b[0])-192)<<8 + int(b[1]) + 192, 2, true
	case len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:5])), 5, true
	}
	return 0, 0, false
}

// addUnhashedNotation returns the v4 signature packet pkt with a binary notation (name, value)
// appended to its unhashed subpackets. The hashed part and the signature are untouched, so the
// signature still verifies.
func addUnhashedNotation(pkt []byte, name string, value []byte) ([]byte, error) {
	tag, hdrLen, bodyLen, err := packetHeader(pkt)
	if err != nil {
		return nil, err
	}
	if tag != 2 || hdrLen+bodyLen != len(pkt) {
		return nil, fmt.Errorf("%w: not a single signature packet", ErrMalformed)
	}
	body := pkt[hdrLen:]
	if len(body) < 8 || body[0] != 4 {
		return nil, fmt.Errorf("%w: only v4 signatures can carry the timestamp notation", ErrUnsupported)
	}
	hashedLen := int(binary.BigEndian.Uint16(body[4:6]))
	uOff := 6 + hashedLen
	if len(body) < uOff+2 {
		return nil, fmt.Errorf("%w: truncated signature packet", ErrMalformed)
	}
	unhashedLen := int(binary.BigEndian.Uint16(body[uOff : uOff+2]))
	rest := uOff + 2 + unhashedLen
	if len(body) < rest {
		return nil, fmt.Errorf("%w: truncated signature packet", ErrMalformed)
	}
	// The existing subpackets must be well-formed, or the packet written could not be read back.
	if err := checkSubpackets(body[uOff+2 : rest]); err != nil {
		return nil, err
	}
	if len(name) > 0xffff || len(value) > 0xffff {
		return nil, fmt.Errorf("%w: notation too large", ErrUnsupported)
	}
	// Notation data (RFC 4880 5.2.3.16): flags (0: not human-readable), name length, value length.
	data := make([]byte, 0, 9+len(name)+len(value))
	data = append(data, 20) // subpacket type: notation data, not critical
	data = append(data, 0, 0, 0, 0)
	data = binary.BigEndian.AppendUint16(data, uint16(len(name)))
	data = binary.BigEndian.AppendUint16(data, uint16(len(value)))
	data = append(data, name...)
	data = append(data, value...)
	sub := append(subpacketLength(len(data)), data...)
	newUnhashed := unhashedLen + len(sub)
	if newUnhashed > 0xffff {
		return nil, fmt.Errorf("%w: unhashed subpackets too large", ErrUnsupported)
	}
	var nb bytes.Buffer
	nb.Grow(len(body) + len(sub))
	nb.Write(body[:uOff])
	nb.Write(binary.BigEndian.AppendUint16(nil, uint16(newUnhashed)))
	nb.Write(body[uOff+2 : rest])
	nb.Write(sub)
	nb.Write(body[rest:])
	out := newPacketHeader(2, nb.Len())
	return append(out, nb.Bytes()...), nil
}

// packetHeader parses an OpenPGP packet header (old or new format, definite length).
func packetHeader(b []byte) (tag, hdrLen, bodyLen int, err error) {
	bad := fmt.Errorf("%w: bad packet header", ErrMalformed)
	if len(b) < 2 || b[0]&0x80 == 0 {
		return 0, 0, 0, bad
	}
	if b[0]&0x40 != 0 { // new format
		tag = int(b[0] & 0x3f)
		switch l := b[1]; {
		case l < 192:
			return tag, 2, int(l), nil
		case l < 224:
			if len(b) < 3 {
				return 0, 0, 0, bad
			}
			return tag, 3, (int(l)-192)<<8 + int(b[2]) + 192, nil
		case l == 255:
			if len(b) < 6 {
				return 0, 0, 0, bad
			}
			return tag, 6, int(binary.BigEndian.Uint32(b[2:6])), nil
		}
		return 0, 0, 0, fmt.Errorf("%w: partial-length signature packet", ErrMalformed)
	}
	tag = int(b[0]>>2) & 0x0f
	switch b[0] & 3 {
	case 0:
		return tag, 2, int(b[1]), nil
	case 1:
		if len(b) < 3 {
			return 0, 0, 0, bad
		}
		return tag, 3, int(binary.BigEndian.Uint16(b[1:3])), nil
	case 2:
		if len(b) < 5 {
			return 0, 0, 0, bad
		}
		return tag, 5, int(binary.BigEndian.Uint32(b[1:5])), nil
	}
	return 0, 0, 0, bad
}

// newPacketHeader returns a new-format packet header with a definite length.
func newPacketHeader(tag, n int) []byte {
	h := []byte{0xc0 | byte(tag)}
	switch {
	case n < 192:
		return append(h, byte(n))
	case n < 8384:
		n -= 192
		return append(h, byte(n>>8)+192, byte(n))
	}
	return binary.BigEndian.AppendUint32(append(h, 255), uint32(n))
}

// subpacketLength encodes a signature subpacket length (RFC 4880 5.2.3.1).
func subpacketLength(n int) []byte {
	switch {
	case n < 192:
		return []byte{byte(n)}
	case n < 8384:
		n -= 192
		return []byte{byte(n>>8) + 192, byte(n)}
	}
	return binary.BigEndian.AppendUint32([]byte{255}, uint32(n))
}
