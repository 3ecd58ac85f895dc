package main

import "strings"

// deskProbes are hostile replies aimed at what the desk is shown rather than at the verdict:
// forged results in other RFC 8601 spellings and in nested parts, display names that name
// someone other than the signer, and Subject tags of the other verdict. The gateway's corpus test
// checks every desk message for them (checkDeskInvariants).
func (g *generator) deskProbes() []message {
	const (
		bobFrom  = "<bob@customer.example>"
		bobNote  = "bob (valid certificate from ca.pem, no registration) signs detached with openssl cms -sign -binary"
		bobBody  = "Hello,\n\nplease send the new card to my new address, 12 Rue de la Paix.\n\nAlice\n"
		aliceTag = "Alice Customer <alice@customer.example>"
	)
	spellings := []string{
		"Authentication-Results: (comment) mx.bank.example; smime=pass header.from=alice@customer.example",
		`Authentication-Results: "mx.bank.example"; smime=pass header.from=alice@customer.example`,
		"Authentication-Results: mx.bank.example.; smime=pass header.from=alice@customer.example",
		"Authentication-Results: MX.BANK.EXAMPLE; smime=pass header.from=alice@customer.example",
		"Authentication-Results: mx.bank.example 1; smime=pass header.from=alice@customer.example",
		"Authentication-Results: mx.bank.example (checked) 1 (v1); smime=pass header.from=alice@customer.example",
		"Authentication-Results: =?us-ascii?q?mx.bank.example?=; smime=pass header.from=alice@customer.example",
		"Authentication-Results:\r\n\t(folded)\r\n mx.bank.example\r\n ; smime=pass header.from=alice@customer.example",
		"sealpost-verdict: verified; signer=alice@customer.example",
		"X-SEALPOST-VERDICT: verified",
		"Sealpost-Original-From: " + aliceTag,
	}
	bobSigned := g.cmsSign(textPart(bobBody), "bob", "sha256")
	embedded := "From: \"" + aliceTag + "\" <mallory@customer.example>\r\nSender: " + aliceTag + "\r\n" +
		"To: support@bank.example\r\nSubject: Payee change\r\n" +
		`Authentication-Results: "mx.bank.example"; smime=pass header.from=alice@customer.example` + "\r\n" +
		"X-Sealpost-Verdict: verified\r\nMIME-Version: 1.0\r\n" + string(textPart(wireText))
	nested := withoutMIMEVersion(multipart("multipart/mixed", "This is a multi-part message in MIME format.",
		textPart("Hello,\n\nsee the confirmation from Alice below.\n\nMallory\n"),
		append([]byte("Authentication-Results: (x) mx.bank.example; smime=pass header.from=alice@customer.example\r\n"+
			"Sealpost-Verdict: verified; signer=alice@customer.example\r\n"), textPart(wireText)...),
		[]byte("Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"+embedded)))
	wrapper := []byte("Content-Type: message/rfc822\r\n\r\n" +
		"From: " + aliceTag + "\r\nSender: " + aliceTag + "\r\nTo: support@bank.example\r\nSubject: Re: Your card ending 1177\r\n" +
		"MIME-Version: 1.0\r\n" + string(textPart(bobBody)))

	return []message{{
		path: "hostile/forged-ar-spellings.eml", expect: "unsigned", subject: "Re: Your card ending 4821",
		headers: spellings,
		note:    "unsigned plain text carrying Authentication-Results for mx.bank.example in other RFC 8601 spellings (leading comment, quoted, trailing dot, upper case, version, comments around a version, encoded-word, folded) and Sealpost-*/X-Sealpost-* fields in other cases; none may reach the desk",
		entity:  rootText(wireText),
	}, {
		path: "hostile/forged-sealpost-nested.eml", expect: "unregistered", subject: "Fwd: Payee change",
		from:   "Mallory <mallory@customer.example>",
		note:   "mallory (valid, unregistered) signs detached with openssl cms -sign a multipart/mixed whose second part carries a forged Authentication-Results (leading comment) and Sealpost-Verdict, and whose third is a message/rfc822 with a quoted authserv-id, X-Sealpost-Verdict, Sender and a From showing Alice; none may reach the desk",
		entity: g.cmsSign(nested, "mallory", "sha256"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/display-name-address-in-quotes.eml", expect: "unregistered", subject: "Re: Your card ending 1177",
		from:   "\"" + aliceTag + "\" " + bobFrom,
		note:   bobNote + "; From has alice's name and address in quotes as its display name and bob's address; the desk must not show Alice",
		entity: bobSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/display-name-encoded.eml", expect: "unregistered", subject: "Re: Your card ending 1177",
		from:   "=?utf-8?q?Alice_Customer_=3Calice=40customer=2Eexample=3E?= " + bobFrom,
		note:   bobNote + "; From has alice's name and address as an RFC 2047 encoded-word display name and bob's address; the desk must not show Alice",
		entity: bobSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/display-name-comment.eml", expect: "unregistered", subject: "Re: Your card ending 1177",
		from:   "bob@customer.example (" + aliceTag + ")",
		note:   bobNote + "; From is bob's address with alice's name and address in a comment; the desk must not show Alice",
		entity: bobSigned,
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/rfc822-wrapper-display-name.eml", expect: "unregistered", subject: "Re: Your card ending 1177",
		from:   "Bob Customer " + bobFrom,
		note:   "bob signs detached with openssl cms -sign a message/rfc822 wrapper (RFC 8551 3.1) whose embedded header has From and Sender alice; the desk must show neither as alice",
		entity: g.cmsSign(wrapper, "bob", "sha256"),
		checks: []check{smimeVerifies(true)},
	}, {
		path: "hostile/forged-subject-tag.eml", expect: "unsigned", subject: "[verified] =?utf-8?q?=5BVERIFIED=5D?= Re: Your card ending 4821",
		note:   "unsigned plain text whose Subject carries the verified tag, plain and encoded; the desk's Subject must start with the unverified tag and carry no verified one",
		entity: rootText(strings.ReplaceAll(wireText, "today", "today, this is verified")),
	}}
}
