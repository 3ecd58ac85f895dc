package smime

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
)

// Object identifiers used by sealpost's CMS (RFC 5652, 5083, 5084, 3565, 8551, 3161).
var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidAuthEnvelopedData  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 23}
	oidRSAEncryption      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSAESOAEP          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidAES128CBC          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES128GCM          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 6}
	oidAES192GCM          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 26}
	oidAES256GCM          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	oidSMIMECapabilities  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 15}
	oidAttrTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// keyTransRecipientInfo (RFC 5652 6.2.1). RID is either an issuerAndSerialNumber SEQUENCE or a
// [0] IMPLICIT subjectKeyIdentifier, so it is kept raw.
type keyTransRecipientInfo struct {
	Version      int
	RID          asn1.RawValue
	KeyEncAlg    pkix.AlgorithmIdentifier
	EncryptedKey []byte
}

type encryptedContentInfo struct {
	ContentType      asn1.ObjectIdentifier
	ContentEncAlg    pkix.AlgorithmIdentifier
	EncryptedContent asn1.RawValue `asn1:"optional,tag:0"`
}

type envelopedData struct {
	Version        int
	OriginatorInfo asn1.RawValue   `asn1:"optional,tag:0"`
	RecipientInfos []asn1.RawValue `asn1:"set"`
	EncryptedCI    encryptedContentInfo
	UnprotAttrs    asn1.RawValue `asn1:"optional,tag:1"`
}

type authEnvelopedData struct {
	Version        int
	OriginatorInfo asn1.RawValue   `asn1:"optional,tag:0"`
	RecipientInfos []asn1.RawValue `asn1:"set"`
	AuthEncryptCI  encryptedContentInfo
	AuthAttrs      asn1.RawValue `asn1:"optional,tag:1"`
	MAC            []byte
	UnauthAttrs    asn1.RawValue `asn1:"optional,tag:2"`
}

// gcmParameters (RFC 5084 3.2).
type gcmParameters struct {
	Nonce  []byte
	ICVLen int `asn1:"default:12"`
}

// rsaesOAEPParams (RFC 8017 A.2.1 / RFC 4055).
type rsaesOAEPParams struct {
	Hash pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF  pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	// pSourceFunc left at its default (empty label).
}

// smimeCapability (RFC 8551 2.5.2).
type smimeCapability struct {
	ID     asn1.ObjectIdentifier
	Params asn1.RawValue `asn1:"optional"`
}

var asn1Null = asn1.RawValue{Tag: asn1.TagNull}

// sealpostCapabilities is what sealpost's signatures announce it can decrypt, strongest first, so that
// customers' replies use AES-GCM where their client can.
var sealpostCapabilities = []smimeCapability{
	{ID: oidAES256GCM}, {ID: oidAES128GCM}, {ID: oidAES256CBC}, {ID: oidAES128CBC},
}
