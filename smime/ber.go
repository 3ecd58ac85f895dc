package smime

import (
	"fmt"
)

// Limits of BERToDER: OpenSSL, gpgsm and Outlook nest CMS about 15 levels deep at most (certificate extensions inside SignedData), and a mail message
// is far below maxBERSize.
const (
	maxBERDepth = 32
	maxBERSize  = 64 << 20
)

// BERToDER re-encodes a BER TLV (as OpenSSL's streaming S/MIME output writes it: indefinite lengths,
// constructed OCTET STRINGs) so that encoding/asn1 can read it: every length becomes definite and
// minimal, and a constructed universal OCTET STRING becomes one primitive OCTET STRING holding its
// concatenated chunks. Context-specific and other constructed values keep their structure (Decrypt
// reads a constructed [0] IMPLICIT encryptedContent itself). SET OF ordering is not changed. DER input
// comes out unchanged. Trailing bytes after the first TLV, nesting deeper than maxBERDepth or input
// larger than maxBERSize are errors (ErrMalformed); it never panics.
//
// It works in two passes over the input, so that the output is allocated once: the first checks the
// encoding and records each constructed value's DER content length (in the order the values start),
// the second writes the DER with those lengths.
func BERToDER(ber []byte) ([]byte, error) {
	if len(ber) > maxBERSize {
		return nil, fmt.Errorf("%w: BER input of %d bytes", ErrMalformed, len(ber))
	}
	var m berMeasure
	n, content, err := m.value(ber, 0, false)
	if err != nil {
		return nil, err
	}
	if n != len(ber) {
		return nil, fmt.Errorf("%w: %d bytes after the BER value", ErrMalformed, len(ber)-n)
	}
	w := berWriter{lens: m.lens, out: make([]byte, 0, m.size(ber, content))}
	w.value(ber, false)
	return w.out, nil
}

// berHeader parses identifier and length octets. length is -1 for the indefinite form.
func berHeader(b []byte) (class byte, constructed bool, tag []byte, length, hdrLen int, err error) {
	if len(b) < 2 {
		return 0, false, nil, 0, 0, fmt.Errorf("%w: truncated BER", ErrMalformed)
	}
	class, constructed = b[0]>>6, b[0]&0x20 != 0
	i := 1
	if b[0]&0x1f == 0x1f { // high tag number form
		for {
			if i >= len(b) || i > 5 {
				return 0, false, nil, 0, 0, fmt.Errorf("%w: BER tag", ErrMalformed)
			}
			c := b[i]
			i++
			if c&0x80 == 0 {
				break
			}
		}
	}
	tag = b[:i]
	if i >= len(b) {
		return 0, false, nil, 0, 0, fmt.Errorf("%w: truncated BER", ErrMalformed)
	}
	l := b[i]
	i++
	switch {
	case l < 0x80:
		length = int(l)
	case l == 0x80:
		if !constructed {
			return 0, false, nil, 0, 0, fmt.Errorf("%w: indefinite length on a primitive BER value", ErrMalformed)
		}
		length = -1
	default:
		n := int(l & 0x7f)
		if n > 4 || i+n > len(b) {
			return 0, false, nil, 0, 0, fmt.Errorf("%w: BER length", ErrMalformed)
		}
		for _, c := range b[i : i+n] {
			length = length<<8 | int(c)
		}
		i += n
		if length > maxBERSize {
			return 0, false, nil, 0, 0, fmt.Errorf("%w: BER length", ErrMalformed)
		}
	}
	if length >= 0 && length > len(b)-i {
		return 0, false, nil, 0, 0, fmt.Errorf("%w: BER length beyond the data", ErrMalformed)
	}
	return class, constructed, tag, length, i, nil
}

// berMeasure is BERToDER's first pass. lens holds the DER content length of each constructed value
// in the order the values start.
type berMeasure struct{ lens []int }

// isOctetString reports whether tag and class are a universal OCTET STRING's.
func isOctetString(class byte, tag []byte) bool {
	return class == 0 && len(tag) == 1 && tag[0]&0x1f == 4
}

// value checks the TLV at the start of b and returns how many input bytes it uses and the length of
// its DER content. inOctets: b is a chunk of a constructed OCTET STRING, which must be one itself.
func (m *berMeasure) value(b []byte, depth int, inOctets bool) (used, content int, err error) {
	if depth > maxBERDepth {
		return 0, 0, fmt.Errorf("%w: BER nested too deeply", ErrMalformed)
	}
	class, constructed, tag, length, hl, err := berHeader(b)
	if err != nil {
		return 0, 0, err
	}
	octets := isOctetString(class, tag)
	if inOctets && !octets {
		return 0, 0, fmt.Errorf("%w: constructed OCTET STRING holds a non-OCTET STRING", ErrMalformed)
	}
	if !constructed {
		return hl + length, length, nil
	}
	at := len(m.lens)
	m.lens = append(m.lens, 0)
	pos, end := hl, len(b)
	if length >= 0 {
		end = hl + length
	}
	for {
		if length >= 0 && pos == end {
			break
		}
		if length < 0 && pos+1 < len(b) && b[pos] == 0 && b[pos+1] == 0 {
			pos += 2
			break
		}
		if pos >= end {
			return 0, 0, fmt.Errorf("%w: BER without end-of-contents", ErrMalformed)
		}
		n, c, err := m.value(b[pos:end], depth+1, octets)
		if err != nil {
			return 0, 0, err
		}
		pos += n
		if octets {
			content += c // the chunks' contents, concatenated
		} else {
			content += m.size(b[pos-n:], c)
		}
	}
	m.lens[at] = content
	return pos, content, nil
}

// size is the DER length of the TLV at the start of b with a content of content bytes (a constructed
// OCTET STRING is written primitive, with a tag of the same length).
func (m *berMeasure) size(b []byte, content int) int {
	_, _, tag, _, _, _ := berHeader(b)
	n := 1 // the short form
	if content >= 0x80 {
		for c := content; c > 0; c >>= 8 {
			n++ // 0x8k and k bytes
		}
	}
	return len(tag) + n + content
}

// berWriter is BERToDER's second pass, over input the first has checked.
type berWriter struct {
	lens []int
	out  []byte
}

// value writes the DER form of the TLV at the start of b (only its content when inOctets: it is a
// chunk of an OCTET STRING being joined) and returns how many input bytes it used.
func (w *berWriter) value(b []byte, inOctets bool) int {
	class, constructed, tag, length, hl, _ := berHeader(b)
	if !constructed {
		if !inOctets {
			w.out = append(w.out, tag...)
			w.out = appendLength(w.out, length)
		}
		w.out = append(w.out, b[hl:hl+length]...)
		return hl + length
	}
	content := w.lens[0]
	w.lens = w.lens[1:]
	octets := isOctetString(class, tag)
	if !inOctets {
		if octets {
			w.out = append(w.out, 0x04)
		} else {
			w.out = append(w.out, tag...)
		}
		w.out = appendLength(w.out, content)
	}
	pos, end := hl, len(b)
	if length >= 0 {
		end = hl + length
	}
	for pos < end {
		if length < 0 && b[pos] == 0 && b[pos+1] == 0 {
			return pos + 2
		}
		pos += w.value(b[pos:end], octets)
	}
	return pos
}

func appendLength(out []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(out, byte(n))
	case n < 1<<8:
		return append(out, 0x81, byte(n))
	case n < 1<<16:
		return append(out, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
