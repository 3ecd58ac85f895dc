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
func BERToDER(ber []byte) ([]byte, error) {
	if len(ber) > maxBERSize {
		return nil, fmt.Errorf("%w: BER input of %d bytes", ErrMalformed, len(ber))
	}
	out, n, err := berValue(ber, 0, make([]byte, 0, len(ber)))
	if err != nil {
		return nil, err
	}
	if n != len(ber) {
		return nil, fmt.Errorf("%w: %d bytes after the BER value", ErrMalformed, len(ber)-n)
	}
	return out, nil
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

// berValue appends the DER form of the TLV at the start of b to out and returns how many input
// bytes it used.
func berValue(b []byte, depth int, out []byte) ([]byte, int, error) {
	if depth > maxBERDepth {
		return nil, 0, fmt.Errorf("%w: BER nested too deeply", ErrMalformed)
	}
	class, constructed, tag, length, hl, err := berHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if !constructed {
		out = append(out, tag...)
		out = appendLength(out, length)
		return append(out, b[hl:hl+length]...), hl + length, nil
	}
	// Constructed: convert the children into a scratch buffer, then emit with a definite length.
	var body []byte
	var used int
	if length >= 0 {
		inner := b[hl : hl+length]
		for pos := 0; pos < len(inner); {
			var n int
			if body, n, err = berValue(inner[pos:], depth+1, body); err != nil {
				return nil, 0, err
			}
			pos += n
		}
		used = hl + length
	} else {
		pos := hl
		for {
			if pos+1 < len(b) && b[pos] == 0 && b[pos+1] == 0 {
				pos += 2
				break
			}
			if pos >= len(b) {
				return nil, 0, fmt.Errorf("%w: BER without end-of-contents", ErrMalformed)
			}
			var n int
			if body, n, err = berValue(b[pos:], depth+1, body); err != nil {
				return nil, 0, err
			}
			pos += n
		}
		used = pos
	}
	if class == 0 && len(tag) == 1 && tag[0]&0x1f == 4 { // universal OCTET STRING: concatenate
		chunks, err := octetChunks(body)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, 0x04)
		out = appendLength(out, len(chunks))
		return append(out, chunks...), used, nil
	}
	out = append(out, tag...)
	out = appendLength(out, len(body))
	return append(out, body...), used, nil
}

// octetChunks concatenates the DER OCTET STRINGs in body (already normalized, so each is primitive).
func octetChunks(body []byte) ([]byte, error) {
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		class, constructed, tag, length, hl, err := berHeader(body)
		if err != nil {
			return nil, err
		}
		if class != 0 || constructed || len(tag) != 1 || tag[0] != 0x04 || length < 0 {
			return nil, fmt.Errorf("%w: constructed OCTET STRING holds a non-OCTET STRING", ErrMalformed)
		}
		out = append(out, body[hl:hl+length]...)
		body = body[hl+length:]
	}
	return out, nil
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
