package main

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// This file crafts what no tool will produce on request: CBC ciphertext
// modified after encryption (EFAIL) and an OpenPGP message without MDC.

// --- a minimal DER walker, enough to reach EnvelopedData's encryptedContent ---

type tlv struct {
	tag     byte
	content []byte
}

// readTLV reads one DER element (single-byte tags, definite lengths: what
// openssl cms -outform DER writes when not streaming).
func readTLV(b []byte) (tlv, []byte) {
	if len(b) < 2 {
		failf("der: short element")
	}
	tag, l := b[0], int(b[1])
	b = b[2:]
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 4 || len(b) < n {
			failf("der: indefinite or oversized length")
		}
		l = 0
		for _, c := range b[:n] {
			l = l<<8 | int(c)
		}
		b = b[n:]
	}
	if len(b) < l {
		failf("der: truncated element")
	}
	return tlv{tag, b[:l]}, b[l:]
}

func children(b []byte) []tlv {
	var out []tlv
	for len(b) > 0 {
		var t tlv
		t, b = readTLV(b)
		out = append(out, t)
	}
	return out
}

func (t tlv) encode() []byte {
	l := len(t.content)
	var hdr []byte
	switch {
	case l < 0x80:
		hdr = []byte{t.tag, byte(l)}
	case l < 0x100:
		hdr = []byte{t.tag, 0x81, byte(l)}
	case l < 0x10000:
		hdr = []byte{t.tag, 0x82, byte(l >> 8), byte(l)}
	default:
		hdr = []byte{t.tag, 0x83, byte(l >> 16), byte(l >> 8), byte(l)}
	}
	return append(hdr, t.content...)
}

func join(ts []tlv) []byte {
	var b []byte
	for _, t := range ts {
		b = append(b, t.encode()...)
	}
	return b
}

// modifyEnvelopedCBC parses a DER ContentInfo holding EnvelopedData encrypted
// with a CBC cipher, lets modify change the IV and ciphertext, and re-encodes.
func modifyEnvelopedCBC(der []byte, modify func(iv, ct []byte) []byte) []byte {
	ci, rest := readTLV(der)
	if len(rest) != 0 || ci.tag != 0x30 {
		failf("der: not a ContentInfo")
	}
	ciParts := children(ci.content) // contentType, [0] content
	ed := children(ciParts[1].content)
	if len(ed) != 1 || ed[0].tag != 0x30 {
		failf("der: no EnvelopedData")
	}
	edParts := children(ed[0].content) // version, recipientInfos, encryptedContentInfo
	if len(edParts) != 3 {
		failf("der: EnvelopedData with %d fields (originatorInfo or unprotectedAttrs?)", len(edParts))
	}
	eci := children(edParts[2].content) // contentType, contentEncryptionAlgorithm, [0] encryptedContent
	if len(eci) != 3 || eci[2].tag != 0x80 {
		failf("der: encryptedContent not a primitive [0]")
	}
	alg := children(eci[1].content)
	if len(alg) != 2 || alg[1].tag != 0x04 || len(alg[1].content) != aes.BlockSize {
		failf("der: no CBC IV")
	}
	eci[2].content = modify(alg[1].content, eci[2].content)
	edParts[2].content = join(eci)
	ed[0].content = join(edParts)
	ciParts[1].content = join(ed)
	ci.content = join(ciParts)
	return ci.encode()
}

// efailGadgets inserts chosen plaintext blocks after plaintext block k
// (EFAIL's CBC gadget, Poddebniak et al. 2018): knowing P_k, the pair
// (C_{k-1} ^ P_k ^ G, C_k) decrypts to a random block followed by G. The
// blocks after the insertion decrypt as before, so the padding stays valid.
func efailGadgets(plaintext []byte, k int, chosen ...string) func(iv, ct []byte) []byte {
	return func(iv, ct []byte) []byte {
		const bs = aes.BlockSize
		prev := iv
		if k > 0 {
			prev = ct[(k-1)*bs : k*bs]
		}
		ck := ct[k*bs : (k+1)*bs]
		pk := plaintext[k*bs : (k+1)*bs]
		out := append([]byte(nil), ct[:(k+1)*bs]...)
		for _, gs := range chosen {
			if len(gs) != bs {
				failf("efail: gadget %q is not one block", gs)
			}
			x := make([]byte, bs)
			for i := range x {
				x[i] = prev[i] ^ pk[i] ^ gs[i]
			}
			out = append(out, x...)
			out = append(out, ck...)
		}
		return append(out, ct[(k+1)*bs:]...)
	}
}

// flipByte flips one bit in ciphertext block k: plaintext block k turns to
// garbage and the same bit flips in plaintext block k+1.
func flipByte(k, i int, mask byte) func(iv, ct []byte) []byte {
	return func(iv, ct []byte) []byte {
		out := append([]byte(nil), ct...)
		out[k*aes.BlockSize+i] ^= mask
		return out
	}
}

// --- OpenPGP: Symmetrically Encrypted Data (tag 9), no MDC ---

// noMDCMessage encrypts plaintext (as a literal data packet) to the bank's
// OpenPGP encryption subkey with AES-128 in a tag 9 packet: OpenPGP CFB with
// the resynchronisation step (RFC 4880 §13.9), no modification detection.
// Armored. go-crypto and GnuPG only write tag 18 (SEIPD) today.
func (g *generator) noMDCMessage(plaintext []byte) []byte {
	f, err := os.Open(g.key("bank-pgp.pub.asc"))
	if err != nil {
		failf("%v", err)
	}
	defer f.Close()
	ring, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil || len(ring) != 1 {
		failf("bank-pgp.pub.asc: %v", err)
	}
	enc, ok := ring[0].EncryptionKey(time.Now())
	if !ok {
		failf("bank-pgp.pub.asc: no encryption key")
	}
	sessionKey := make([]byte, 16)
	_, _ = rand.Read(sessionKey)

	var msg bytes.Buffer
	if err := packet.SerializeEncryptedKeyAEAD(&msg, enc.PublicKey, packet.CipherAES128, false, sessionKey, nil); err != nil {
		failf("pkesk: %v", err)
	}

	// Literal data packet: binary, no file name, dated now.
	var lit bytes.Buffer
	lit.WriteByte('b')
	lit.WriteByte(0)
	_ = binary.Write(&lit, binary.BigEndian, uint32(time.Now().Unix()))
	lit.Write(plaintext)
	literal := newFormatPacket(11, lit.Bytes())

	block, err := aes.NewCipher(sessionKey)
	if err != nil {
		failf("%v", err)
	}
	randData := make([]byte, block.BlockSize())
	_, _ = rand.Read(randData)
	stream, prefix := packet.NewOCFBEncrypter(block, randData, packet.OCFBResync)
	body := make([]byte, len(literal))
	stream.XORKeyStream(body, literal)
	msg.Write(newFormatPacket(9, append(prefix, body...)))

	var out bytes.Buffer
	w, err := armor.Encode(&out, "PGP MESSAGE", nil)
	if err != nil {
		failf("%v", err)
	}
	_, _ = w.Write(msg.Bytes())
	if err := w.Close(); err != nil {
		failf("%v", err)
	}
	out.WriteString("\n")
	return crlf(out.Bytes())
}

// newFormatPacket frames body as an RFC 4880 new-format packet with a
// definite length.
func newFormatPacket(tag byte, body []byte) []byte {
	out := []byte{0xc0 | tag}
	switch l := len(body); {
	case l < 192:
		out = append(out, byte(l))
	case l < 8384:
		l -= 192
		out = append(out, byte(l>>8)+192, byte(l))
	default:
		out = append(out, 0xff, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return append(out, body...)
}
