package tsa

import (
	"bytes"
	"encoding/asn1"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// TestSigningTime: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5652 11.3), always UTC.
func TestCMSSigningTime(t *testing.T) {
	for _, tc := range []struct {
		at  time.Time
		tag byte
		txt string
	}{
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600)), asn1.TagUTCTime, "491231225959Z"},
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), asn1.TagGeneralizedTime, "20500101000000Z"},
	} {
		a, err := signingTimeAttribute(tc.at)
		if err != nil {
			t.Fatal(err)
		}
		var attr struct {
			Type   asn1.ObjectIdentifier
			Values []asn1.RawValue `asn1:"set"`
		}
		if _, err := asn1.Unmarshal(a, &attr); err != nil || !attr.Type.Equal(oidAttrSigningTime) || len(attr.Values) != 1 {
			t.Fatalf("%v: %x does not read as one signingTime (%v)", tc.at, a, err)
		}
		if v := attr.Values[0]; v.Tag != int(tc.tag) || string(v.Bytes) != tc.txt {
			t.Errorf("%v: tag %d %q, want %d %q", tc.at, v.Tag, v.Bytes, tc.tag, tc.txt)
		}
	}
}

// TestSignedDataShape: what Marshal writes reads back with encoding/asn1 as the SignedData it
// describes: detached content has no eContent, attached has it, the signed attributes come in
// their sorted order under [0], the unsigned ones under [1], and signedAttributes' SET holds the
// same attributes as the [0].
func TestCMSSignedDataShape(t *testing.T) {
	long, _ := CMSAttribute(asn1.ObjectIdentifier{1, 2, 3}, func(b *cryptobyte.Builder) { b.AddASN1OctetString(make([]byte, 40)) })
	short, _ := messageDigestAttribute([]byte{1, 2, 3})
	attrs := [][]byte{long, short}
	set, err := signedAttributes(attrs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(attrs[0], short) {
		t.Fatal("the signed attributes are not in DER SET OF order")
	}
	sigAlg, _ := asn1.Marshal(struct{ A asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}})
	for _, content := range [][]byte{nil, []byte("tst info")} {
		sd := SignedData{Version: 3, ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}, Content: content,
			Certificates: []byte{0x30, 0x00}, SID: []byte{0x30, 0x00}, SignedAttrs: attrs, SigAlg: sigAlg,
			Signature: []byte("sig"), Unsigned: [][]byte{short}}
		der, err := sd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var ci struct {
			Type    asn1.ObjectIdentifier
			Content asn1.RawValue `asn1:"explicit,tag:0"`
		}
		var got struct {
			Version int
			Digests asn1.RawValue
			Encap   struct {
				Type    asn1.ObjectIdentifier
				Content []byte `asn1:"optional,explicit,tag:0"`
			}
			Certs   asn1.RawValue `asn1:"optional,tag:0"`
			Signers []struct {
				Version   int
				SID       asn1.RawValue
				Digest    asn1.RawValue
				Signed    asn1.RawValue `asn1:"tag:0"`
				SigAlg    asn1.RawValue
				Signature []byte
				Unsigned  asn1.RawValue `asn1:"optional,tag:1"`
			} `asn1:"set"`
		}
		if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) > 0 || !ci.Type.Equal(oidSignedData) {
			t.Fatalf("ContentInfo: %v", err)
		}
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &got); err != nil {
			t.Fatalf("SignedData: %v", err)
		}
		s := got.Signers
		if got.Version != 3 || !bytes.Equal(got.Encap.Content, content) || len(s) != 1 || string(s[0].Signature) != "sig" ||
			!bytes.Equal(s[0].Signed.Bytes, set[2:]) || !bytes.Equal(s[0].Unsigned.Bytes, short) || !bytes.Equal(s[0].SigAlg.FullBytes, sigAlg) {
			t.Fatalf("content %q: read back %+v", content, got)
		}
	}
}
