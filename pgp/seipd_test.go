package pgp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// TestSEIPDAsGoCrypto: for the same random prefix, the SEIPDv1 packet sealpost writes has
// go-crypto's body byte for byte (ciphertext and MDC; only how the body is cut into partial
// lengths may differ), for lengths around the block and chunk edges and in uneven writes, and
// go-crypto's reader decrypts it and checks its MDC; a changed byte fails that check.
func TestSEIPDAsGoCrypto(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	iv := make([]byte, 16)
	rand.Read(iv)
	data := make([]byte, 3*partialChunk+100)
	rand.Read(data)
	for _, n := range []int{0, 1, 13, 14, 15, 16, 17, 30, 31, 32, 191, 192, 8383, 8384, partialChunk - 40, partialChunk - 39, partialChunk, 3*partialChunk + 100} {
		for _, piece := range []int{1, 7, 16, 4096, n + 1} {
			if piece == 1 && n > 20000 {
				continue
			}
			t.Run(fmt.Sprintf("%d/%d", n, piece), func(t *testing.T) {
				var ours, theirs bytes.Buffer
				w, err := newSEIPD(&ours, key, bytes.NewReader(iv))
				if err != nil {
					t.Fatal(err)
				}
				for p := data[:n]; len(p) > 0; {
					k := min(piece, len(p))
					w.Write(p[:k])
					p = p[k:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				gw, err := packet.SerializeSymmetricallyEncrypted(&theirs, packet.CipherAES256, false, packet.CipherSuite{}, key, &packet.Config{Rand: bytes.NewReader(iv)})
				if err != nil {
					t.Fatal(err)
				}
				gw.Write(data[:n])
				gw.Close()
				if a, b := packetBody(t, ours.Bytes()), packetBody(t, theirs.Bytes()); !bytes.Equal(a, b) {
					t.Fatalf("body of %d bytes differs from go-crypto's %d", len(a), len(b))
				}
				if got := decryptSEIPD(t, ours.Bytes(), key); !bytes.Equal(got, data[:n]) {
					t.Fatalf("go-crypto decrypted %d bytes that differ", len(got))
				}
			})
		}
	}
	var out bytes.Buffer
	w, _ := newSEIPD(&out, key, bytes.NewReader(iv))
	w.Write(data[:1000])
	w.Close()
	b := out.Bytes()
	b[len(b)/2] ^= 1
	p, err := packet.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.(*packet.SymmetricallyEncrypted).Decrypt(packet.CipherAES256, key)
	if err == nil {
		_, err = io.ReadAll(r)
		if err == nil {
			err = r.Close()
		}
	}
	if err == nil {
		t.Error("a changed byte passed the MDC check")
	}
}

// packetBody is a new-format packet's body, its partial lengths joined.
func packetBody(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) == 0 || b[0] != 0xc0|18 {
		t.Fatalf("not a new-format SEIPD packet: % x", b[:min(len(b), 4)])
	}
	b = b[1:]
	var body []byte
	for {
		var n int
		partial := false
		switch c := int(b[0]); {
		case c < 192:
			n, b = c, b[1:]
		case c < 224:
			n, b = (c-192)<<8+int(b[1])+192, b[2:]
		case c == 255:
			n, b = int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]), b[5:]
		default:
			n, b, partial = 1<<(c&0x1f), b[1:], true
		}
		body, b = append(body, b[:n]...), b[n:]
		if !partial {
			if len(b) != 0 {
				t.Fatalf("%d bytes after the packet", len(b))
			}
			return body
		}
	}
}

func decryptSEIPD(t *testing.T, b, key []byte) []byte {
	t.Helper()
	p, err := packet.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.(*packet.SymmetricallyEncrypted).Decrypt(packet.CipherAES256, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("MDC: %v", err)
	}
	return got
}
