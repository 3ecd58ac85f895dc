package pgp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
)

// armorWriter writes OpenPGP ASCII armor (RFC 4880 6.2) with CRLF line ends straight into a
// buffer: the header line and a blank line, base64 lines of 64 characters, the CRC-24 line and
// the footer — byte for byte what go-crypto's armor.Encode gives through crlfWriter. The CRC is
// computed with a table: go-crypto's armor computes it a bit at a time (a third of a 10 MB
// message's CPU), and GnuPG 2.2 and RNP refuse armor without it (RFC 9580 would allow that).
type armorWriter struct {
	b *bytes.Buffer
	// w, when set, is given b's bytes whenever armorSpill of them wait (b then holds at most that
	// much and a line): the message is written as it is made instead of held whole.
	w    io.Writer
	err  error // w's first error
	kind string
	crc  uint32
	rest [armorLineBytes]byte // bytes of an unfinished line
	n    int
}

// armorSpill is how much of the armored output waits in b before it goes to w.
const armorSpill = 64 << 10

// armorLineBytes is what one armor line of 64 base64 characters encodes; armorLineOut is that
// line as written, with its CRLF.
const (
	armorLineBytes = 48
	armorLineOut   = 64 + 2
)

const (
	crc24Init = 0xb704ce
	crc24Poly = 0x1864cfb
)

// crc24Tables are the slicing-by-8 tables of CRC-24 over a 32-bit register holding the CRC in its
// top 24 bits: crc24Tables[0][i] is byte i's step, crc24Tables[k][i] the step of byte i followed
// by k zero bytes. Eight bytes then cost eight lookups and no carried dependency between them
// (about four times the speed of a byte at a time: the armor of a 10 MB statement is 13.7 MB).
var crc24Tables = func() (t [8][256]uint32) {
	for i := range t[0] {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ (crc24Poly&0xffffff)<<8
			} else {
				c <<= 1
			}
		}
		t[0][i] = c
	}
	for k := 1; k < 8; k++ {
		for i := range t[k] {
			p := t[k-1][i]
			t[k][i] = p<<8 ^ t[0][p>>24]
		}
	}
	return t
}()

// crc24 is the OpenPGP CRC-24 of p continuing from crc.
func crc24(crc uint32, p []byte) uint32 {
	r := crc << 8 // the register: the CRC in its top 24 bits
	t := &crc24Tables
	for len(p) >= 8 {
		hi := r ^ binary.BigEndian.Uint32(p)
		lo := binary.BigEndian.Uint32(p[4:])
		r = t[7][hi>>24] ^ t[6][hi>>16&0xff] ^ t[5][hi>>8&0xff] ^ t[4][hi&0xff] ^
			t[3][lo>>24] ^ t[2][lo>>16&0xff] ^ t[1][lo>>8&0xff] ^ t[0][lo&0xff]
		p = p[8:]
	}
	for _, b := range p {
		r = r<<8 ^ t[0][byte(r>>24)^b]
	}
	return r >> 8
}

// newArmor writes the armor's header for kind ("PGP MESSAGE") into b; with w set, what gathers in
// b goes on to w as the armor is written (b is not emptied at Close: the caller writes the rest).
func newArmor(b *bytes.Buffer, w io.Writer, kind string) *armorWriter {
	b.WriteString("-----BEGIN " + kind + "-----\r\n\r\n")
	return &armorWriter{b: b, w: w, kind: kind, crc: crc24Init}
}

func (a *armorWriter) Write(p []byte) (int, error) {
	n := len(p)
	a.crc = crc24(a.crc, p)
	if a.n > 0 {
		c := copy(a.rest[a.n:], p)
		a.n, p = a.n+c, p[c:]
		if a.n < armorLineBytes {
			return n, nil
		}
		a.line(a.rest[:])
		a.n = 0
	}
	for len(p) >= armorLineBytes {
		lines := len(p) / armorLineBytes
		if a.w != nil { // no more than fills b to armorSpill: it stays small when the output goes to w
			lines = min(lines, max(armorSpill-a.b.Len(), 0)/armorLineOut+1)
		}
		full := lines * armorLineBytes
		a.lines(p[:full])
		p = p[full:]
		if a.spill(); a.err != nil {
			return 0, a.err
		}
	}
	a.n = copy(a.rest[:], p)
	return n, nil
}

// spill gives w what waits in b once there is armorSpill of it.
func (a *armorWriter) spill() {
	if a.w == nil || a.err != nil || a.b.Len() < armorSpill {
		return
	}
	_, a.err = a.w.Write(a.b.Bytes())
	a.b.Reset()
}

// lines writes p, whole lines of armorLineBytes, encoded in place in the buffer's free space.
func (a *armorWriter) lines(p []byte) {
	const out = armorLineOut
	n := len(p) / armorLineBytes
	a.b.Grow(n * out)
	buf := a.b.AvailableBuffer()[:n*out]
	for i := range n {
		line := buf[i*out : (i+1)*out]
		base64.StdEncoding.Encode(line[:64], p[i*armorLineBytes:(i+1)*armorLineBytes])
		line[64], line[65] = '\r', '\n'
	}
	a.b.Write(buf)
}

// line writes p (at most armorLineBytes) as one base64 line.
func (a *armorWriter) line(p []byte) {
	var out [64]byte
	base64.StdEncoding.Encode(out[:], p)
	a.b.Write(out[:base64.StdEncoding.EncodedLen(len(p))])
	a.b.WriteString("\r\n")
}

// Close writes the last line, the CRC-24 line and the footer (without a line end, as
// armor.Encode).
func (a *armorWriter) Close() error {
	if a.n > 0 {
		a.line(a.rest[:a.n])
		a.n = 0
	}
	sum := []byte{byte(a.crc >> 16), byte(a.crc >> 8), byte(a.crc)}
	a.b.WriteString("=" + base64.StdEncoding.EncodeToString(sum) + "\r\n-----END " + a.kind + "-----")
	return a.err
}
