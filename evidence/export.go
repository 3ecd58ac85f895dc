package evidence

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Proof is what shows that one record is in the log: the record's bytes, the newest checkpoint
// that covers it, and the inclusion proof from the record to that checkpoint's root.
type Proof struct {
	Seq        uint64
	Record     []byte // the record's line, exactly as the tree hashes it
	Checkpoint Checkpoint
	Head       Head
	Steps      []Step
	// Renewals are the checkpoint's renewals, in order (see RenewalData).
	Renewals []Checkpoint
}

// ErrNotCheckpointed: the record is newer than the newest checkpoint; a proof exists once the
// next one is made (within checkpoint_interval).
var ErrNotCheckpointed = errors.New("evidence: the record is not covered by a checkpoint yet")

// Prove builds the proof of record seq against the newest checkpoint of b that covers it.
func Prove(b Backend, seq uint64) (Proof, error) {
	var cp Checkpoint
	var head Head
	var renewals []Checkpoint
	err := b.Checkpoints(func(line []byte) error {
		c, err := decodeCheckpoint(line)
		if err != nil {
			return err
		}
		if c.Renewal {
			if cp.Text != "" && c.Text == cp.Text {
				renewals = append(renewals, c)
			}
			return nil
		}
		h, err := ParseHead(c.Text)
		if err != nil {
			return err
		}
		if h.Size > seq {
			cp, head, renewals = c, h, nil
		}
		return nil
	})
	if err != nil {
		return Proof{}, err
	}
	if cp.Text == "" {
		return Proof{}, ErrNotCheckpointed
	}
	segs, err := b.Segments()
	if err != nil {
		return Proof{}, err
	}
	if len(segs) == 0 || segs[0].First > 0 {
		return Proof{}, errors.New("evidence: the segments before this record were pruned; its proof was to be exported before")
	}
	leaves := make([]Hash, 0, head.Size)
	var record []byte
	stop := errors.New("stop")
	err = b.Scan(0, func(pos Position, _ uint64, line []byte) error {
		if uint64(len(leaves)) == head.Size {
			return stop
		}
		if uint64(len(leaves)) == seq {
			record = bytes.Clone(line)
		}
		leaves = append(leaves, LeafHash(line))
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return Proof{}, err
	}
	if uint64(len(leaves)) != head.Size {
		return Proof{}, fmt.Errorf("evidence: the log holds %d records, its checkpoint %d (run sealpost evidence verify)", len(leaves), head.Size)
	}
	if rootOf(leaves) != head.Root {
		return Proof{}, errors.New("evidence: the records do not give the checkpoint's root (run sealpost evidence verify)")
	}
	path, err := InclusionProof(int(seq), leaves)
	if err != nil {
		return Proof{}, err
	}
	steps, err := ProofSteps(seq, head.Size, path)
	if err != nil {
		return Proof{}, err
	}
	if err := VerifyInclusion(LeafHash(record), seq, head.Size, path, head.Root); err != nil {
		return Proof{}, err
	}
	return Proof{Seq: seq, Record: record, Checkpoint: cp, Head: head, Steps: steps, Renewals: renewals}, nil
}

// FindSent looks for the record whose sent_sha256 is the digest of the message as a customer
// received it: the bytes sent, perhaps after trace fields their servers added at the top
// (Received, Return-Path, Delivered-To), perhaps saved with LF line ends. It returns the record's
// seq and the bytes that match.
func FindSent(b Backend, received []byte) (uint64, []byte, error) {
	sent := map[string]uint64{}
	err := b.Scan(0, func(pos Position, _ uint64, line []byte) error {
		if !bytes.Contains(line, []byte(`"sent_sha256":"`)) {
			return nil
		}
		r, err := Decode(line)
		if err != nil {
			return fmt.Errorf("evidence: %s: %w", pos, err)
		}
		if r.Outbound != nil {
			sent[r.Outbound.SentSHA256] = r.Seq
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	for _, msg := range [][]byte{received, toCRLF(received)} {
		// Each header line's start is where the bytes sent may begin.
		for off := 0; off < len(msg); {
			d := sha256.Sum256(msg[off:])
			if seq, ok := sent[hex.EncodeToString(d[:])]; ok {
				return seq, msg[off:], nil
			}
			nl := bytes.IndexByte(msg[off:], '\n')
			if nl < 0 || nl <= 1 { // the end, or the empty line ending the header
				break
			}
			off += nl + 1
		}
	}
	return 0, nil, errors.New("evidence: no record of a message with these bytes (sent by another node, or changed since)")
}

// toCRLF gives bare LF line ends a CR, as the message was sent.
func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// WriteBundle writes p to dir for a third party who has openssl and sha256sum: the record, the
// checkpoint text, its signature and token, the proof's sibling hashes, the certificates
// (roots: what the bank's signer and the TSA chain to; chain: the certificates between), the bytes
// sent when given, and verify.sh with README.txt saying what each command shows.
func WriteBundle(dir string, p Proof, roots, chain []*x509.Certificate, sent []byte) error {
	if err := os.MkdirAll(filepath.Join(dir, "proof"), 0o755); err != nil {
		return err
	}
	if len(p.Checkpoint.Chain) == 0 {
		return errors.New("evidence: the checkpoint carries no signer certificate")
	}
	files := map[string][]byte{
		"record.json":    p.Record,
		"checkpoint.txt": []byte(p.Checkpoint.Text),
		"checkpoint.sig": p.Checkpoint.Signature,
		"checkpoint.tst": p.Checkpoint.Token,
		"signer.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Checkpoint.Chain[0]}),
		"roots.pem":      encodeCerts(roots),
	}
	var inter []byte
	for _, der := range p.Checkpoint.Chain[1:] {
		inter = append(inter, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	files["chain.pem"] = append(inter, encodeCerts(chain)...)
	if len(files["chain.pem"]) == 0 {
		files["chain.pem"] = files["signer.pem"] // openssl -untrusted wants a file with a certificate
	}
	if sent != nil {
		files["message.eml"] = sent
	}
	var sh strings.Builder
	sh.WriteString(bundleScriptHead)
	if len(p.Renewals) > 0 {
		// The first token is checked as of the first renewal's time, which that renewal proves it
		// existed by; each renewal as of the next one's; the newest as of now.
		fmt.Fprintf(&sh, "openssl ts -verify -in checkpoint.tst -token_in -data checkpoint.txt -CAfile roots.pem -untrusted chain.pem -attime %d\n",
			p.Renewals[0].TokenTime.Unix())
	} else {
		sh.WriteString("openssl ts -verify -in checkpoint.tst -token_in -data checkpoint.txt -CAfile roots.pem -untrusted chain.pem\n")
	}
	sh.WriteString("openssl ts -reply -in checkpoint.tst -token_in -token_out -text | grep 'Time stamp:'\n")
	prev := "checkpoint.tst"
	for i, r := range p.Renewals {
		name := fmt.Sprintf("renewal-%d.tst", i+1)
		files[name] = r.Token
		if i == 0 {
			sh.WriteString(bundleRenewalHead)
		}
		fmt.Fprintf(&sh, "cat checkpoint.txt checkpoint.sig %s > renewal-%d.data\n", prev, i+1)
		attime := ""
		if i+1 < len(p.Renewals) {
			attime = fmt.Sprintf(" -attime %d", p.Renewals[i+1].TokenTime.Unix())
		}
		fmt.Fprintf(&sh, "openssl ts -verify -in %s -token_in -data renewal-%d.data -CAfile roots.pem -untrusted chain.pem%s\n", name, i+1, attime)
		fmt.Fprintf(&sh, "openssl ts -reply -in %s -token_in -token_out -text | grep 'Time stamp:'\n", name)
		prev = name
	}
	if sent != nil {
		sh.WriteString(bundleMessageCheck)
	}
	sh.WriteString(`{ printf '\000'; cat record.json; } | openssl dgst -sha256 -binary > h.bin` + "\n")
	for i, s := range p.Steps {
		name := fmt.Sprintf("proof/%02d-%s.bin", i+1, map[bool]string{true: "left", false: "right"}[s.Left])
		files[name] = s.Sibling[:]
		out := "-binary > h2.bin && mv h2.bin h.bin"
		if i == len(p.Steps)-1 {
			out = "-hex | sed 's/^.*= //' > root.hex"
		}
		if s.Left {
			fmt.Fprintf(&sh, "{ printf '\\001'; cat %s h.bin; } | openssl dgst -sha256 %s\n", name, out)
		} else {
			fmt.Fprintf(&sh, "{ printf '\\001'; cat h.bin %s; } | openssl dgst -sha256 %s\n", name, out)
		}
	}
	if len(p.Steps) == 0 {
		sh.WriteString("{ printf '\\000'; cat record.json; } | openssl dgst -sha256 -hex | sed 's/^.*= //' > root.hex\n")
	}
	sh.WriteString(bundleScriptTail)
	files["verify.sh"] = []byte(sh.String())
	files["README.txt"] = []byte(fmt.Sprintf(bundleReadme, p.Seq, p.Head.Node, p.Head.Size, p.Head.Time.UTC().Format("2006-01-02 15:04:05 MST")))
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func encodeCerts(cs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range cs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

const bundleScriptHead = `#!/bin/sh
# Checks this evidence bundle with openssl and sha256sum alone. Run it in the bundle's directory.
set -e
# 1. The bank's signing certificate chains to the bank's root.
openssl verify -CAfile roots.pem -untrusted chain.pem -purpose any signer.pem
# 2. The bank signed the checkpoint.
openssl x509 -in signer.pem -pubkey -noout > signer-pub.pem
openssl dgst -sha256 -verify signer-pub.pem -signature checkpoint.sig checkpoint.txt
# 3. The checkpoint existed at the time its RFC 3161 token gives (printed below).
`

const bundleRenewalHead = `# 3b. The checkpoint was timestamped again (renewal-N.tst, RFC 4998's idea): each renewal's token
#     is over checkpoint.txt, checkpoint.sig and the token before it, so the checkpoint is proven
#     to have existed, with its first token, at each renewal's time — after the first TSA's
#     certificate or algorithm has aged out.
`

const bundleMessageCheck = `# 4. message.eml is the message the record is about: its SHA-256 is the record's sent_sha256.
sent=$(sed 's/.*"sent_sha256":"\([0-9a-f]*\)".*/\1/' record.json)
test "$(sha256sum < message.eml | cut -d' ' -f1)" = "$sent"
echo "message.eml: sha256 $sent, as recorded"
`

const bundleScriptTail = `# 5. The record is in the log the checkpoint signed: its leaf hash, then each sibling of the proof,
#    gives the checkpoint's root (RFC 9162: SHA-256 of 0x00 || record, of 0x01 || left || right).
test "$(cat root.hex)" = "$(sed -n 's/^root: //p' checkpoint.txt)"
echo "record.json is in the tree of $(sed -n 's/^size: //p' checkpoint.txt) records the checkpoint signed: inclusion proven"
echo "OK"
`

const bundleReadme = `Evidence bundle: record %d of the evidence log of %s, proven against its checkpoint of %d records
signed and timestamped at %s.

Everything here can be checked with openssl and sha256sum alone: run  sh verify.sh  in this
directory, or the commands in it one by one. What each file is:

  record.json      the record, exactly as the log holds it (one line of JSON, no newline)
  message.eml      (when present) the message as sealpost sent it; sha256sum gives the record's sent_sha256
  checkpoint.txt   the tree head: node, size (records), root (Merkle tree hash, RFC 9162), time
  checkpoint.sig   the bank's signature over checkpoint.txt (SHA-256, the signer's key)
  checkpoint.tst   an RFC 3161 timestamp token over checkpoint.txt
  renewal-N.tst    (when present) later tokens over checkpoint.txt, checkpoint.sig and the token before
  signer.pem       the bank's signing certificate; chain.pem the certificates between it (and the TSA) and
                   roots.pem, the roots they chain to
  proof/NN-left.bin, proof/NN-right.bin
                   the inclusion proof: the sibling hashes from the record up to the root, in order, and
                   on which side each goes

A record's leaf hash is SHA-256(0x00 || record.json); each step is SHA-256(0x01 || left || right); the last
must equal the root in checkpoint.txt. Any change to the record, the checkpoint or the proof breaks one of
the checks.
`
