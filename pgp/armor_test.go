package pgp

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// TestArmorAsGoCrypto: the armor sealpost writes is byte for byte go-crypto's armor.Encode
// through crlfWriter (CRC-24 included), for lengths around every line boundary and in uneven
// writes, and go-crypto's decoder reads it back.
func TestArmorAsGoCrypto(t *testing.T) {
	for _, n := range []int{1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, 65537} {
		data := make([]byte, n)
		rand.Read(data)
		var want bytes.Buffer
		w, err := armor.Encode(crlfWriter{&want}, "PGP MESSAGE", nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		var got bytes.Buffer
		a := newArmor(&got, nil, "PGP MESSAGE")
		for p := data; len(p) > 0; {
			k := min(len(p), 1+len(p)%61) // uneven pieces
			a.Write(p[:k])
			p = p[k:]
		}
		a.Close()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%d bytes: armor differs from go-crypto's:\n%q\nwant\n%q", n, got.String(), want.String())
		}
		blk, err := armor.Decode(bytes.NewReader(got.Bytes()))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		var back bytes.Buffer
		if _, err := back.ReadFrom(blk.Body); err != nil || !bytes.Equal(back.Bytes(), data) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, back.Len(), err)
		}
	}
}

// BenchmarkArmor: 10 MB through sealpost's armor and through go-crypto's.
func BenchmarkArmor(b *testing.B) {
	data := make([]byte, 10<<20)
	rand.Read(data)
	b.Run("sealpost", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			a := newArmor(&out, nil, "PGP MESSAGE")
			a.Write(data)
			a.Close()
		}
	})
	b.Run("go-crypto", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			w, _ := armor.Encode(crlfWriter{&out}, "PGP MESSAGE", nil)
			w.Write(data)
			w.Close()
		}
	})
}

// TestCRC24: the sliced CRC-24 is RFC 4880 6.1's bit-at-a-time one, for every length up to 100
// and a long one, whole or continued across any split.
func TestCRC24(t *testing.T) {
	bitwise := func(p []byte) uint32 { // RFC 4880 6.1, as written there
		crc := uint32(crc24Init)
		for _, b := range p {
			crc ^= uint32(b) << 16
			for range 8 {
				crc <<= 1
				if crc&0x1000000 != 0 {
					crc ^= crc24Poly
				}
			}
		}
		return crc & 0xffffff
	}
	data := make([]byte, 65537)
	rand.Read(data)
	for _, n := range append([]int{65537}, func() (ns []int) {
		for n := range 101 {
			ns = append(ns, n)
		}
		return ns
	}()...) {
		want := bitwise(data[:n])
		if got := crc24(crc24Init, data[:n]); got != want {
			t.Fatalf("%d bytes: %06x; want %06x", n, got, want)
		}
		for _, at := range []int{1, 7, 8, 9, n / 2} {
			if at > n {
				continue
			}
			if got := crc24(crc24(crc24Init, data[:at]), data[at:n]); got != want {
				t.Fatalf("%d bytes split at %d: %06x; want %06x", n, at, got, want)
			}
		}
	}
}
