package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// check is a claim about a written corpus file, made with a real tool: ok
// says whether the tool is meant to accept the file, and reason, when set,
// what its complaint must contain when it is not.
type check struct {
	what   string
	ok     bool
	reason string
	run    func(g *generator, msg []byte) error
}

// because sets the reason the tool must give when it refuses the file.
func (c check) because(reason string) check {
	c.reason = reason
	return c
}

// outcome returns why the result of c is not the claimed one, or nil.
func (c check) outcome(err error) error {
	switch {
	case err != nil && c.ok:
		return err
	case err == nil && !c.ok:
		return fmt.Errorf("expected to fail, but it succeeded")
	case err != nil && !strings.Contains(err.Error(), c.reason):
		return fmt.Errorf("fails, but not because of %q: %w", c.reason, err)
	}
	return nil
}

// smimeVerifies: openssl cms -verify accepts the message's root entity
// against ca.pem only, for S/MIME signing.
func smimeVerifies(ok bool) check {
	return check{what: "openssl cms -verify -CAfile ca.pem", ok: ok, run: func(g *generator, msg []byte) error {
		return g.opensslVerify(msg, "SMIME")
	}}
}

// smimeVerifiesWith: openssl cms -verify against ca.pem with the signer's certificate given
// separately (-certfile), for signatures that do not carry it (-nocerts).
func smimeVerifiesWith(cert string, ok bool) check {
	return check{what: "openssl cms -verify -CAfile ca.pem -certfile " + cert, ok: ok, run: func(g *generator, msg []byte) error {
		return g.opensslVerify(msg, "SMIME", "-certfile", g.key(cert))
	}}
}

// smimePartVerifies: the same for the n-th part of the root multipart (the
// signed part hidden in an unsigned multipart/mixed).
func smimePartVerifies(n int, ok bool) check {
	return check{what: fmt.Sprintf("openssl cms -verify of root part %d", n+1), ok: ok, run: func(g *generator, msg []byte) error {
		return g.opensslVerify(parts(rootEntity(msg))[n], "SMIME")
	}}
}

// smimeP7MVerifies: the root body, base64 DER, verifies as opaque signed-data
// (openssl does not read an application/octet-stream label itself).
func smimeP7MVerifies(ok bool) check {
	return check{what: "openssl cms -verify -inform DER of the smime.p7m body", ok: ok, run: func(g *generator, msg []byte) error {
		_, body := splitEntity(rootEntity(msg))
		der, err := base64.StdEncoding.DecodeString(string(bytes.ReplaceAll(body, []byte("\r\n"), nil)))
		if err != nil {
			return err
		}
		return g.opensslVerify(der, "DER")
	}}
}

// smimeDecrypts: openssl cms -decrypt with bank.pem/bank.key opens the
// message; then, if verify is not nil, that check runs on the plaintext.
func smimeDecrypts(ok bool, verify *check) check {
	return smimeDecryptsAs("bank", ok, verify)
}

// smimeDecryptsAs is smimeDecrypts with the key pair keys/<who>.pem, keys/<who>.key.
func smimeDecryptsAs(who string, ok bool, verify *check) check {
	what := "openssl cms -decrypt -recip " + who + ".pem"
	if verify != nil {
		what += ", then " + verify.what
		if !verify.ok {
			what += " fails (" + verify.reason + ")"
		}
	}
	return check{what: what, ok: ok, run: func(g *generator, msg []byte) error {
		plain, err := try(msg, "openssl", "cms", "-decrypt", "-recip", g.key(who+".pem"), "-inkey", g.key(who+".key"))
		if err != nil || verify == nil {
			return err
		}
		// The plaintext is a MIME entity; openssl reads it like a message.
		if err := verify.outcome(verify.run(g, plain)); err != nil {
			return fmt.Errorf("plaintext: %s: %w", verify.what, err)
		}
		return nil
	}}
}

func (g *generator) opensslVerify(data []byte, inform string, extra ...string) error {
	args := append([]string{"cms", "-verify", "-inform", inform, "-CAfile", g.key("ca.pem"),
		"-purpose", "smimesign", "-out", "/dev/null"}, extra...)
	_, err := try(data, "openssl", args...)
	return err
}

// pgpVerifies: gpg --verify of a PGP/MIME multipart/signed message with only
// the given public key known.
func pgpVerifies(key string, ok bool) check {
	return check{what: "gpg --verify with only " + key + " known", ok: ok, run: func(g *generator, msg []byte) error {
		p := parts(rootEntity(msg))
		if len(p) != 2 {
			return fmt.Errorf("%d parts in multipart/signed", len(p))
		}
		_, sig := splitEntity(p[1])
		home := g.gpgHome(key)
		out, err := try(nil, "gpg", gpgArgs(home, "--status-fd", "1", "--verify", g.scratch(sig), g.scratch(p[0]))...)
		return gpgResult(out, err, true)
	}}
}

// gpgResult folds gpg's status lines into its error; with needGood, a
// success without a good signature is an error too.
func gpgResult(status []byte, err error, needGood bool) error {
	if err != nil {
		return fmt.Errorf("%w; status: %s", err, bytes.TrimSpace(status))
	}
	if needGood && !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) {
		return fmt.Errorf("no GOODSIG; status: %s", bytes.TrimSpace(status))
	}
	return nil
}

// pgpDecrypts: gpg --decrypt of a PGP/MIME multipart/encrypted message with
// the bank's secret key and alice's public key; with signed, a good
// signature is required too.
func pgpDecrypts(signed, ok bool) check {
	what := "gpg --decrypt with bank-pgp.asc"
	if signed {
		what += ", good signature by alice-pgp"
	}
	return check{what: what, ok: ok, run: func(g *generator, msg []byte) error {
		p := parts(rootEntity(msg))
		if len(p) != 2 {
			return fmt.Errorf("%d parts in multipart/encrypted", len(p))
		}
		_, armored := splitEntity(p[1])
		home := g.gpgHome("bank-pgp.asc", "alice-pgp.pub.asc")
		out, err := try(nil, "gpg", gpgArgs(home, "--status-fd", "1", "--output", "/dev/null", "--decrypt", g.scratch(armored))...)
		return gpgResult(out, err, signed)
	}}
}
