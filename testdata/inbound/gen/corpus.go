package main

import (
	"bytes"
	"crypto/aes"
	"strings"
)

// Texts of the replies. tamperedFrom/tamperedTo is the one-word change made
// to signed text after signing.
const (
	cardText  = "Hello,\n\nplease block my card ending 4821, I lost it this morning.\n\nThank you,\nAlice\n"
	wireText  = "Hello,\n\nplease wire the money (9,800 EUR) to IBAN DE89 3704 0044 0532 0130 00 today.\n\nAlice\n"
	closeText = "Hello,\n\nplease close my savings account and move the balance to my current account.\n\nAlice\n"

	tamperedFrom = "current account"
	tamperedTo   = "brother's account"
)

// corpus is every message, good and hostile, with its recipe.
func (g *generator) corpus() []message {
	return append(append(g.good(), g.hostile()...), g.deskProbes()...)
}

func (g *generator) good() []message {
	detached := g.cmsSign(textPart(cardText), "alice", "sha256")
	opaque := g.cmsSign(textPart(cardText), "alice", "sha256", "-nodetach")
	legacySigned := crlf(must(textPart(cardText), "openssl", "smime", "-sign", "-binary", "-md", "sha256",
		"-signer", g.key("alice.pem"), "-inkey", g.key("alice.key")))
	return []message{{
		path: "good/smime-detached.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice signs (openssl cms -sign -binary, detached, SHA-256): multipart/signed, application/pkcs7-signature",
		entity: detached,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "good/smime-opaque.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice signs opaquely (openssl cms -sign -nodetach -binary, SHA-256): application/pkcs7-mime; smime-type=signed-data",
		entity: opaque,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "good/smime-signed-encrypted-cbc.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice's detached multipart/signed (openssl cms -sign) encrypted to bank.pem with openssl cms -encrypt -aes256 (EnvelopedData, AES-256-CBC)",
		entity: g.cmsEncrypt(detached, "aes256"),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(true)))},
	}, {
		path: "good/smime-signed-encrypted-gcm.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice's opaque signed-data (openssl cms -sign -nodetach) encrypted to bank.pem with openssl cms -encrypt -aes-256-gcm (AuthEnvelopedData)",
		entity: g.cmsEncrypt(opaque, "aes-256-gcm"),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(true)))},
	}, {
		path: "good/smime-x-pkcs7-labels.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "legacy labels: openssl smime -sign (multipart/signed, application/x-pkcs7-signature) then openssl smime -encrypt -aes256 to bank.pem (application/x-pkcs7-mime enveloped-data)",
		entity: crlf(must(legacySigned, "openssl", "smime", "-encrypt", "-binary", "-aes256", g.key("bank.pem"))),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(true)))},
	}, {
		path: "good/smime-octet-stream-p7m.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note: "alice's opaque signed-data (openssl cms -sign -nodetach -outform DER) labelled application/octet-stream; name=smime.p7m, as some clients and relays send it",
		entity: []byte("MIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=\"smime.p7m\"\r\n" +
			"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n" +
			base64Body(g.cmsSignDER(textPart(cardText), "alice"))),
		checks: []check{smimeP7MVerifies(true)},
	}, {
		path: "good/smime-keyid.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice signs detached with openssl cms -sign -keyid: the SignerInfo names her certificate by subjectKeyIdentifier (RFC 5652 5.3), not issuer and serial number",
		entity: g.cmsSign(textPart(cardText), "alice", "sha256", "-keyid"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "good/smime-nocerts.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice signs detached with openssl cms -sign -nocerts: no certificate travels; the bank holds her registered alice.pem in its directory",
		entity: g.cmsSign(textPart(cardText), "alice", "sha256", "-nocerts"),
		checks: []check{smimeVerifies(false).because("signer certificate not found"), smimeVerifiesWith("alice.pem", true)},
	}, {
		path: "good/smime-pss.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "alice signs detached with openssl cms -sign -keyopt rsa_padding_mode:pss (RSASSA-PSS, SHA-256, MGF1-SHA-256, maximum salt length; RFC 8551 2.2, RFC 4056)",
		entity: g.cmsSign(textPart(cardText), "alice", "sha256", "-keyopt", "rsa_padding_mode:pss"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "good/smime-pss-keyid-nocerts-gcm.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note: "alice signs opaquely with openssl cms -sign -nodetach -keyid -nocerts -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:digest, then openssl cms -encrypt -aes-256-gcm -keyid to bank.pem",
		entity: g.cmsEncrypt(g.cmsSign(textPart(cardText), "alice", "sha256", "-nodetach", "-keyid", "-nocerts",
			"-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest"), "aes-256-gcm", "-keyid"),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifiesWith("alice.pem", true)))},
	}, {
		path: "good/pgp-signed.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "PGP/MIME multipart/signed: gpg --armor --detach-sign --digest-algo SHA256 with alice-pgp over the CRLF text part",
		entity: g.pgpSigned(textPart(cardText), "alice-pgp.asc", "SHA256"),
		checks: []check{pgpVerifies("alice-pgp.pub.asc", true)},
	}, {
		path: "good/pgp-signed-encrypted.eml", expect: "verified", subject: "Re: Your card ending 4821",
		note:   "PGP/MIME multipart/encrypted: gpg --armor --sign --encrypt --digest-algo SHA256 by alice-pgp to bank-pgp (signature inside the encryption, RFC 3156 6.2)",
		entity: g.pgpSignedEncrypted(textPart(cardText), "alice-pgp.asc"),
		checks: []check{pgpDecrypts(true, true)},
	}, {
		path: "good/bob-unregistered.eml", expect: "unregistered", subject: "Re: Your card ending 1177",
		from:   "Bob Customer <bob@customer.example>",
		note:   "bob (valid certificate from ca.pem, no registration) signs detached with openssl cms -sign -binary",
		entity: g.cmsSign(textPart(strings.ReplaceAll(strings.ReplaceAll(cardText, "4821", "1177"), "Alice", "Bob")), "bob", "sha256"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "good/unsigned-plain.eml", expect: "unsigned", subject: "Re: Your card ending 4821",
		note:   "a plain text reply, neither signed nor encrypted",
		entity: rootText(cardText),
	}}
}

func (g *generator) hostile() []message {
	aliceSigned := g.cmsSign(textPart(cardText), "alice", "sha256")
	closeSigned := g.cmsSign(textPart(closeText), "alice", "sha256")
	if !bytes.Contains(closeSigned, []byte(tamperedFrom)) {
		failf("tampered: %q not in the signed text", tamperedFrom)
	}
	pgpClose := g.pgpSigned(textPart(closeText), "alice-pgp.asc", "SHA256")
	forged := []string{
		"Authentication-Results: mx.bank.example; smime=pass header.from=alice@customer.example",
		"Sealpost-Verdict: verified; signer=alice@customer.example",
		"X-Sealpost-Verdict: verified",
	}
	forgedInner := append([]byte(strings.Join(forged, "\r\n")+"\r\n"), textPart(wireText)...)

	efailPlain := g.cmsSign(textPart(wireText), "alice", "sha256")
	// The block to inject after lies inside the signed text.
	k := bytes.Index(efailPlain, []byte("please wire"))/aes.BlockSize + 1

	return []message{{
		path: "hostile/from-differs-from-signer.eml", expect: "failed; from-mismatch", subject: "Re: Your card ending 4821",
		from:   "Mallory <mallory@customer.example>",
		note:   "alice's valid detached signature (openssl cms -sign) under From: mallory@customer.example",
		entity: aliceSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/two-from-addresses.eml", expect: "failed; from-not-single", subject: "Re: Your card ending 4821",
		from:    "Alice Customer <alice@customer.example>, Mallory <mallory@customer.example>",
		headers: []string{"Sender: Alice Customer <alice@customer.example>"},
		note:    "alice's valid detached signature (openssl cms -sign) under a From with two addresses (alice, mallory) and Sender: alice",
		entity:  aliceSigned,
		checks:  []check{smimeVerifies(true)},
	}, {
		path: "hostile/no-from.eml", expect: "failed; from-not-single", subject: "Re: Your card ending 4821",
		from:   "-",
		note:   "alice's valid detached signature (openssl cms -sign) on a message without a From header",
		entity: aliceSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/display-name-spoofing.eml", expect: "failed; from-mismatch", subject: "Re: Your card ending 4821",
		from:   "\"alice@customer.example\" <mallory@customer.example>",
		note:   "alice's valid detached signature (openssl cms -sign); From has alice's address as display name and mallory's as address",
		entity: aliceSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/signed-part-in-unsigned-multipart.eml", expect: "failed; not-root", subject: "Re: Your card ending 4821",
		note: "multipart/mixed (made by hand): an unsigned text/plain part asking to wire money, then alice's valid multipart/signed part (openssl cms -sign)",
		entity: multipart("multipart/mixed", "This is a multi-part message in MIME format.",
			textPart(wireText), withoutMIMEVersion(aliceSigned)),
		checks: []check{smimeVerifies(false).because("type: multipart/mixed"), smimePartVerifies(1, true)},
	}, {
		path: "hostile/untrusted-root.eml", expect: "failed; chain", subject: "Re: Your card ending 4821",
		note:   "alice-rogue (issued by rogue-ca, same subject as ca.pem) signs detached with openssl cms -sign -certfile rogue-ca.pem: the look-alike root travels in the message",
		entity: g.cmsSign(textPart(cardText), "alice-rogue", "sha256", "-certfile", g.key("rogue-ca.pem")),
		checks: []check{smimeVerifies(false).because("self-signed certificate in certificate chain")},
	}, {
		path: "hostile/expired-certificate.eml", expect: "failed; chain", subject: "Re: Your card ending 4821",
		note:   "alice-expired (valid 2024-01-01 to 2025-06-01) signs detached with openssl cms -sign; signing time is the generation date",
		entity: g.cmsSign(textPart(cardText), "alice-expired", "sha256"),
		checks: []check{smimeVerifies(false).because("certificate has expired")},
	}, {
		path: "hostile/sha1.eml", expect: "failed; weak-algorithm", subject: "Re: Your card ending 4821",
		note:   "alice signs detached with openssl cms -sign -md sha1 (micalg=sha1); cryptographically valid, and openssl accepts it",
		entity: g.cmsSign(textPart(cardText), "alice", "sha1"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/md5.eml", expect: "failed; weak-algorithm", subject: "Re: Your card ending 4821",
		note:   "alice signs detached with openssl cms -sign -md md5 (micalg=md5); cryptographically valid, and openssl accepts it",
		entity: g.cmsSign(textPart(cardText), "alice", "md5"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/tampered-content.eml", expect: "failed; signature", subject: "Re: Closing my savings account",
		note:   "alice's valid detached signature (openssl cms -sign), then '" + tamperedFrom + "' changed to '" + tamperedTo + "' in the signed text",
		entity: bytes.Replace(closeSigned, []byte(tamperedFrom), []byte(tamperedTo), 1),
		checks: []check{smimeVerifies(false).because("content verify error")},
	}, {
		path: "hostile/forged-authentication-results.eml", expect: "unsigned", subject: "Re: Your card ending 4821",
		headers: forged,
		note:    "unsigned plain text from alice carrying forged Authentication-Results (authserv-id mx.bank.example), Sealpost-Verdict and X-Sealpost-Verdict headers",
		entity:  rootText(wireText),
	}, {
		path: "hostile/forged-headers-inside-signed.eml", expect: "unregistered", subject: "Re: Your card ending 4821",
		from:   "Mallory <mallory@customer.example>",
		note:   "mallory (valid, unregistered) signs detached with openssl cms -sign a part whose own headers carry forged Authentication-Results and Sealpost-Verdict for alice",
		entity: g.cmsSign(forgedInner, "mallory", "sha256"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/other-key.eml", expect: "failed; wrong-key", subject: "Re: Your card ending 4821",
		note:   "alice2 (a second valid certificate for alice@customer.example from ca.pem, not the registered one) signs detached with openssl cms -sign",
		entity: g.cmsSign(textPart(cardText), "alice2", "sha256"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/pgp-other-key.eml", expect: "failed", subject: "Re: Your card ending 4821",
		note:   "PGP/MIME multipart/signed by mallory-pgp, whose uid is alice@customer.example (gpg --detach-sign); wrong-key or unknown-key depending on the key directory",
		entity: g.pgpSigned(textPart(cardText), "mallory-pgp.asc", "SHA256"),
		checks: []check{pgpVerifies("alice-pgp.pub.asc", false).because("NO_PUBKEY"), pgpVerifies("mallory-pgp.pub.asc", true)},
	}, {
		path: "hostile/pgp-sha1.eml", expect: "failed; weak-algorithm", subject: "Re: Your card ending 4821",
		note:   "PGP/MIME multipart/signed by alice-pgp with gpg --detach-sign --digest-algo SHA1 (micalg=pgp-sha1); gpg accepts it",
		entity: g.pgpSigned(textPart(cardText), "alice-pgp.asc", "SHA1"),
		checks: []check{pgpVerifies("alice-pgp.pub.asc", true)},
	}, {
		path: "hostile/pgp-tampered.eml", expect: "failed; signature", subject: "Re: Closing my savings account",
		note:   "PGP/MIME multipart/signed by alice-pgp (gpg --detach-sign), then '" + tamperedFrom + "' changed to '" + tamperedTo + "' in the signed part",
		entity: bytes.Replace(pgpClose, []byte(tamperedFrom), []byte(tamperedTo), 1),
		checks: []check{pgpVerifies("alice-pgp.pub.asc", false).because("BADSIG")},
	}, {
		path: "hostile/efail-cbc.eml", expect: "failed|rejected|unsigned", subject: "Re: Your card ending 4821",
		note: "alice's multipart/signed encrypted to bank.pem (openssl cms -encrypt -aes256), then EFAIL CBC gadgets spliced into the ciphertext in Go: three chosen blocks, each after a random one, inside the signed text",
		entity: g.smimeCrafted(g.cmsEncryptDER(efailPlain, "aes256"),
			efailGadgets(efailPlain, k, " Also wire 9,800", " EUR to IBAN DE8", "9 3704 0044 0532")),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(false).because("content verify error")))},
	}, {
		path: "hostile/efail-cbc-bitflip.eml", expect: "failed|rejected|unsigned", subject: "Re: Your card ending 4821",
		note:   "alice's multipart/signed encrypted to bank.pem (openssl cms -encrypt -aes256), then one bit flipped in Go in a ciphertext block inside the signed text (CBC malleability)",
		entity: g.smimeCrafted(g.cmsEncryptDER(efailPlain, "aes256"), flipByte(k, 3, 0x01)),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(false).because("content verify error")))},
	}, {
		path: "hostile/unsigned-encrypted-cbc.eml", expect: "unsigned", subject: "Re: Your card ending 4821",
		note:   "an unsigned text/plain entity encrypted to bank.pem with openssl cms -encrypt -aes256 (anyone can encrypt to the bank)",
		entity: g.cmsEncrypt(rootText(wireText), "aes256"),
		checks: []check{smimeDecrypts(true, ptr(smimeVerifies(false).because("type: text/plain")))},
	}, {
		path: "hostile/smime-3des-other-recipient.eml", expect: "rejected", subject: "Re: Your card ending 4821",
		note:   "alice's multipart/signed encrypted with openssl cms -encrypt -des3 to alice.pem, not to the bank: refused as not encrypted to the bank (554 5.7.1), not as an unsupported cipher",
		entity: g.cmsEncryptTo(aliceSigned, "alice", "des3"),
		checks: []check{smimeDecrypts(false, nil).because("Error decrypting CMS"), smimeDecryptsAs("alice", true, ptr(smimeVerifies(true)))},
	}, {
		path: "hostile/smime-nocerts-unknown-signer.eml", expect: "failed; unknown-key", subject: "Re: Your card ending 4821",
		from:   "Mallory <mallory@customer.example>",
		note:   "mallory signs detached with openssl cms -sign -nocerts; the bank's directory has no certificate of hers, so nothing can be verified",
		entity: g.cmsSign(textPart(cardText), "mallory", "sha256", "-nocerts"),
		checks: []check{smimeVerifies(false).because("signer certificate not found"), smimeVerifiesWith("mallory.pem", true)},
	}, {
		path: "hostile/smime-pss-tampered.eml", expect: "failed; signature", subject: "Re: Closing my savings account",
		note:   "alice's RSASSA-PSS detached signature (openssl cms -sign -keyopt rsa_padding_mode:pss), then '" + tamperedFrom + "' changed to '" + tamperedTo + "' in the signed text",
		entity: bytes.Replace(g.cmsSign(textPart(closeText), "alice", "sha256", "-keyopt", "rsa_padding_mode:pss"), []byte(tamperedFrom), []byte(tamperedTo), 1),
		checks: []check{smimeVerifies(false).because("content verify error")},
	}, {
		path: "hostile/smime-pss-mgf1-sha512.eml", expect: "unsupported", subject: "Re: Your card ending 4821",
		note:   "alice signs with openssl cms -sign -keyopt rsa_padding_mode:pss -keyopt rsa_mgf1_md:sha512 (MGF1 over another hash than the message): valid for openssl, not checkable by Go, so neither verified nor called forged",
		entity: g.cmsSign(textPart(cardText), "alice", "sha256", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_mgf1_md:sha512"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/pgp-no-mdc.eml", expect: "rejected", subject: "Re: Your card ending 4821",
		note:   "PGP/MIME multipart/encrypted crafted in Go: PKESK to bank-pgp (AES-128 session key) and a Symmetrically Encrypted Data packet (tag 9, OpenPGP CFB with resync, no MDC) around a literal data packet",
		entity: g.pgpEncryptedEntity(g.noMDCMessage(textPart(wireText))),
		checks: []check{pgpDecrypts(false, false).because("decryption forced to fail")},
	}}
}

func ptr(c check) *check { return &c }

// smimeCrafted wraps DER EnvelopedData, modified by modify, as openssl would
// have labelled it.
func (g *generator) smimeCrafted(der []byte, modify func(iv, ct []byte) []byte) []byte {
	return []byte("MIME-Version: 1.0\r\n" +
		"Content-Disposition: attachment; filename=\"smime.p7m\"\r\n" +
		"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		base64Body(modifyEnvelopedCBC(der, modify)))
}

// pgpSigned is a PGP/MIME multipart/signed entity (RFC 3156 §5) over part,
// signed with the secret key in keyFile.
func (g *generator) pgpSigned(part []byte, keyFile, digest string) []byte {
	home := g.gpgHome(keyFile)
	sig := crlf(gpg(home, part, "--armor", "--detach-sign", "--digest-algo", digest))
	return multipart(`multipart/signed; micalg=pgp-`+strings.ToLower(digest)+`; protocol="application/pgp-signature"`,
		"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
		part,
		append([]byte("Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n"+
			"Content-Description: OpenPGP digital signature\r\n"+
			"Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"), sig...))
}

// pgpSignedEncrypted signs part with keyFile and encrypts it to bank-pgp in
// one OpenPGP message.
func (g *generator) pgpSignedEncrypted(part []byte, keyFile string) []byte {
	home := g.gpgHome(keyFile, "bank-pgp.pub.asc")
	return g.pgpEncryptedEntity(crlf(gpg(home, part, "--armor", "--sign", "--encrypt", "--digest-algo", "SHA256",
		"--recipient", "support@bank.example")))
}

// pgpEncryptedEntity is a PGP/MIME multipart/encrypted entity (RFC 3156 §4).
func (g *generator) pgpEncryptedEntity(armored []byte) []byte {
	return multipart(`multipart/encrypted; protocol="application/pgp-encrypted"`,
		"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
		[]byte("Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n"),
		append([]byte("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"+
			"Content-Description: OpenPGP encrypted message\r\n"+
			"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"), armored...))
}
