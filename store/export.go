package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ExportVersion is the version of the export format that Export writes and
// Import reads.
//
// The format is JSON lines: a header line {"sealpost-store-export":1}, one
// line per stored row ({"registration":…}, {"thread":…}, {"message":…},
// {"held":…}, {"capabilities":…} or {"recipient_key":…}), then the held
// messages' bytes ({"held_blob":{"id":…,"size":N,"offset":O,"data":…}}, one
// or more consecutive lines per message, each carrying at most
// heldBlobChunk bytes from offset O of its N), and a last line
// {"end":{"records":N}} counting the rows and held messages, so that a
// truncated file is told from a short one. Strings that come from mail are
// JSON []byte (base64), because the store keeps them as bytes that need not
// be UTF-8; times are Unix nanoseconds, as both stores keep them.
//
// The recipient keys, held bytes and "delivered" of held rows came later
// within version 1: exports written before them hold none and still import,
// with held messages not delivered. So did the rows of the bank's API, its
// customer CA and the secure mailbox: {"api_token":…} (the token's hash,
// never a secret), {"issued_cert":…}, {"crl_number":N}, {"audit":…} and
// {"mailbox":…}, whose sealed data follows the held bytes in
// {"mailbox_data":…} lines cut as held_blob's are; and the evidence records
// of operators' decisions not yet in the evidence log,
// {"evidence_outbox":{"line":…,"node":…}}, in the order queued. Idempotent calls and
// the state of one-time passcodes and call verifications (otp_codes,
// otp_rate) are transient and not exported: a code lives minutes, and a
// restored store must not revive one.
const ExportVersion = 1

// ErrBadExport means an export file is not one Import accepts (wrong
// version, malformed or hostile lines, truncated); nothing was imported.
var ErrBadExport = errors.New("store: not a valid sealpost store export")

// maxExportLine bounds one line of an export: a row is far smaller, and a
// held message's bytes are cut into lines of heldBlobChunk (base64: 4/3 of it).
const maxExportLine = 1 << 20

// heldBlobChunk is how many bytes of a held message one line carries.
const heldBlobChunk = 512 << 10

// maxHeldBlobExport bounds the size a held_blob line may announce: far
// beyond any message the gateway accepts.
const maxHeldBlobExport = 1 << 30

// Snapshot is every row of a store, as Export writes it and Import applies
// it; rows of each kind in the order the store keeps them.
type Snapshot struct {
	Registrations []Registration
	Threads       []Thread
	Messages      []ThreadMessage
	Held          []Held
	Capabilities  []Capabilities
	RecipientKeys []RecipientKey
	// HeldBlobs are the held messages' bytes as the store's PutHeld keeps
	// them (sealed by the quarantine: never decrypted here), by ID.
	HeldBlobs []HeldBlob
	// APITokens (their hashes: the store never has a secret), IssuedCerts,
	// Audit and MailboxItems (their Data sealed, as stored) are in the order
	// the store lists them; CRLNumber is the last CRL number handed out, 0
	// before the first. Idempotent calls and OTP state are transient and not
	// exported.
	APITokens    []APIToken
	IssuedCerts  []IssuedCert
	CRLNumber    int64
	Audit        []AuditRecord
	MailboxItems []MailboxItem
	// EvidenceOutbox are the decisions' evidence records the gateway has not
	// appended to its log yet, oldest first.
	EvidenceOutbox []OutboxEntry
}

// HeldBlob is the bytes of one held message, as PutHeld stored them.
type HeldBlob struct {
	ID   string
	Data []byte
}

func (s *Snapshot) records() int {
	n := len(s.Registrations) + len(s.Threads) + len(s.Messages) + len(s.Held) + len(s.Capabilities) +
		len(s.RecipientKeys) + len(s.HeldBlobs) + len(s.APITokens) + len(s.IssuedCerts) + len(s.Audit) + len(s.MailboxItems) +
		len(s.EvidenceOutbox)
	if s.CRLNumber != 0 {
		n++
	}
	return n
}

// AddHeldBlob adds the bytes of held message id (as sealed by the
// quarantine, read from a node's own quarantine directory) to s, keeping
// HeldBlobs ordered by ID as a store's Snapshot orders them; s keeps data,
// which the caller must not change. Adding the same bytes again does
// nothing; other bytes under an ID s holds are ErrConflict, an empty ID
// ErrInvalid.
func (s *Snapshot) AddHeldBlob(id string, data []byte) error {
	if id == "" {
		return fmt.Errorf("%w: empty held ID", ErrInvalid)
	}
	if len(data) > maxHeldBlobExport {
		return fmt.Errorf("%w: held %s: %d bytes (at most %d)", ErrInvalid, id, len(data), maxHeldBlobExport)
	}
	i, found := slices.BinarySearchFunc(s.HeldBlobs, id, func(x HeldBlob, id string) int { return strings.Compare(x.ID, id) })
	if found {
		if !bytes.Equal(s.HeldBlobs[i].Data, data) {
			return fmt.Errorf("held %s: other bytes under this ID: %w", id, ErrConflict)
		}
		return nil
	}
	s.HeldBlobs = slices.Insert(s.HeldBlobs, i, HeldBlob{ID: id, Data: nonNil(data)})
	return nil
}

// ImportCounts says how many rows of each kind Import added (recipient
// keys: added or whose data it replaced); rows the destination held already
// (by their key) are kept as they are.
type ImportCounts struct {
	Registrations, Threads, Messages, Held, Capabilities int
	RecipientKeys, HeldBlobs                             int
	// APITokens and IssuedCerts count those added and those whose
	// revocation the import carried over (a token or certificate revoked in
	// the export stays revoked); Audit counts the records the log lacked.
	APITokens, IssuedCerts, Audit, MailboxItems int
	// EvidenceOutbox counts the queued decision records the outbox lacked.
	EvidenceOutbox int
}

// Exporter is a store whose every row can be read at once, consistently.
type Exporter interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// Importer is a store that adds a snapshot's rows in one transaction,
// skipping those it holds already.
type Importer interface {
	ImportSnapshot(ctx context.Context, s *Snapshot) (ImportCounts, error)
}

// Export writes every row of src to w in the export format (ExportVersion).
func Export(ctx context.Context, src Exporter, w io.Writer) error {
	s, err := src.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return WriteExport(w, s)
}

// Import reads an export from r, checks all of it, and adds its rows to dst
// in one transaction: an export that is refused (ErrBadExport) or a failing
// write imports nothing. Importing the same export again adds nothing.
func Import(ctx context.Context, dst Importer, r io.Reader) (ImportCounts, error) {
	s, err := ReadExport(r)
	if err != nil {
		return ImportCounts{}, err
	}
	n, err := dst.ImportSnapshot(ctx, s)
	if err != nil {
		return ImportCounts{}, fmt.Errorf("import: %w", err)
	}
	return n, nil
}

// The lines of the format.
type (
	exportHeader struct {
		Version *int `json:"sealpost-store-export"`
	}
	exportLine struct {
		Registration *exportRegistration `json:"registration,omitempty"`
		Thread       *exportThread       `json:"thread,omitempty"`
		Message      *exportMessage      `json:"message,omitempty"`
		Held         *exportHeld         `json:"held,omitempty"`
		Capabilities *exportCapabilities `json:"capabilities,omitempty"`
		RecipientKey *exportRecipientKey `json:"recipient_key,omitempty"`
		HeldBlob     *exportHeldBlob     `json:"held_blob,omitempty"`
		APIToken     *exportAPIToken     `json:"api_token,omitempty"`
		IssuedCert   *exportIssuedCert   `json:"issued_cert,omitempty"`
		CRLNumber    *int64              `json:"crl_number,omitempty"`
		Audit        *exportAudit        `json:"audit,omitempty"`
		Mailbox      *exportMailbox      `json:"mailbox,omitempty"`
		MailboxData  *exportHeldBlob     `json:"mailbox_data,omitempty"`
		Outbox       *exportOutbox       `json:"evidence_outbox,omitempty"`
		End          *exportEnd          `json:"end,omitempty"`
	}
	exportRegistration struct {
		Address     []byte `json:"address"`
		Method      string `json:"method"`
		Fingerprint string `json:"fingerprint"`
		Registered  int64  `json:"registered"`
	}
	exportThread struct {
		Token       []byte `json:"token"`
		Customer    []byte `json:"customer"`
		Method      string `json:"method"`
		Fingerprint string `json:"fingerprint"`
		Created     int64  `json:"created"`
		Subject     []byte `json:"subject"`
	}
	exportMessage struct {
		Token     []byte `json:"token"`
		MessageID []byte `json:"message_id"`
		Inbound   bool   `json:"inbound"`
		Verdict   []byte `json:"verdict"`
		At        int64  `json:"at"`
	}
	exportHeld struct {
		ID       []byte `json:"id"`
		Received int64  `json:"received"`
		From     []byte `json:"from"`
		Reason   []byte `json:"reason"`
		Verdict  []byte `json:"verdict"`
		Ref      []byte `json:"ref"`
		Released bool   `json:"released"`
		// Delivered is left out when false, as in exports from before it; so are the decision's
		// fields when there is none.
		Delivered  bool   `json:"delivered,omitempty"`
		Deleted    bool   `json:"deleted,omitempty"`
		DecidedBy  []byte `json:"decided_by,omitempty"`
		DecidedWhy []byte `json:"decided_why,omitempty"`
		DecidedAt  int64  `json:"decided_at,omitempty"`
	}
	exportCapabilities struct {
		Address    []byte `json:"address"`
		SMIMEGCM   bool   `json:"smime_gcm"`
		PGPSEIPDv2 bool   `json:"pgp_seipdv2"`
		Updated    int64  `json:"updated"`
	}
	exportRecipientKey struct {
		Method      string `json:"method"`
		Fingerprint string `json:"fingerprint"`
		Data        []byte `json:"data"`
		Added       int64  `json:"added"`
		// Source is absent for a registered key (and in exports made before sources).
		Source string `json:"source,omitempty"`
	}
	// exportHeldBlob is one piece of a held message's bytes: Data from
	// Offset of its Size bytes. Pointers tell a missing field from zero.
	exportHeldBlob struct {
		ID     []byte `json:"id"`
		Size   *int64 `json:"size"`
		Offset *int64 `json:"offset"`
		Data   []byte `json:"data"`
	}
	exportEnd struct {
		Records *int `json:"records"`
	}
)

// WriteExport writes s to w in the export format.
func WriteExport(w io.Writer, s *Snapshot) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	v := ExportVersion
	if err := enc.Encode(exportHeader{Version: &v}); err != nil {
		return err
	}
	lines := rowLines(s)
	n := s.records()
	lines = append(lines, exportLine{End: &exportEnd{Records: &n}})
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// rowLines are the lines of s's rows and held bytes, in the format's order.
func rowLines(s *Snapshot) []exportLine {
	var lines []exportLine
	for _, r := range s.Registrations {
		lines = append(lines, exportLine{Registration: &exportRegistration{b(r.Address), r.Method, r.Fingerprint, r.Registered.UnixNano()}})
	}
	for _, t := range s.Threads {
		lines = append(lines, exportLine{Thread: &exportThread{b(t.Token), b(t.Customer), t.Method, t.Fingerprint, t.Created.UnixNano(), b(t.Subject)}})
	}
	for _, m := range s.Messages {
		lines = append(lines, exportLine{Message: &exportMessage{b(m.Token), b(m.MessageID), m.Inbound, b(m.Verdict), m.At.UnixNano()}})
	}
	for _, h := range s.Held {
		lines = append(lines, exportLine{Held: &exportHeld{b(h.ID), h.Received.UnixNano(), b(h.From), b(h.Reason), b(h.Verdict), b(h.Ref), h.Released, h.Delivered,
			h.Deleted, bytesOrNil(h.DecidedBy), bytesOrNil(h.DecidedWhy), decidedStamp(h.DecidedAt)}})
	}
	for _, c := range s.Capabilities {
		lines = append(lines, exportLine{Capabilities: &exportCapabilities{b(c.Address), c.SMIMEGCM, c.PGPSEIPDv2, c.Updated.UnixNano()}})
	}
	for _, k := range s.RecipientKeys {
		lines = append(lines, exportLine{RecipientKey: &exportRecipientKey{k.Method, k.Fingerprint, nonNil(k.Data), k.Added.UnixNano(), learnedOnly(k.Source)}})
	}
	lines = append(lines, apiLines(s)...)
	for _, hb := range s.HeldBlobs {
		lines = pieceLines(lines, hb.ID, hb.Data, func(p *exportHeldBlob) exportLine { return exportLine{HeldBlob: p} })
	}
	for _, m := range s.MailboxItems {
		lines = pieceLines(lines, m.ID, m.Data, func(p *exportHeldBlob) exportLine { return exportLine{MailboxData: p} })
	}
	return lines
}

// pieceLines appends to lines those of data, cut into pieces of
// heldBlobChunk (one, empty, for no data), each made a line by line.
func pieceLines(lines []exportLine, id string, data []byte, line func(*exportHeldBlob) exportLine) []exportLine {
	size := int64(len(data))
	for off := int64(0); off == 0 || off < size; off += heldBlobChunk {
		o := off
		lines = append(lines, line(&exportHeldBlob{b(id), &size, &o, nonNil(data[off:min(off+heldBlobChunk, size)])}))
	}
	return lines
}

// ReadExport reads and checks a whole export: the header's version, every
// line (one known row, no unknown fields, values the store would keep) and
// the end line's count, after which nothing may follow. Any problem is an
// error wrapping ErrBadExport that names the line.
func ReadExport(r io.Reader) (*Snapshot, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrBadExport, line, fmt.Sprintf(format, args...))
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, bad(1, "%v", err)
		}
		return nil, fmt.Errorf("%w: empty", ErrBadExport)
	}
	var h exportHeader
	if err := strictJSON(sc.Bytes(), &h); err != nil || h.Version == nil {
		return nil, bad(1, `not the header {"sealpost-store-export":%d}`, ExportVersion)
	}
	if *h.Version != ExportVersion {
		return nil, bad(1, "format version %d; this sealpost reads version %d", *h.Version, ExportVersion)
	}
	rd := newExportReader()
	s := &rd.s
	for line := 2; sc.Scan(); line++ {
		var l exportLine
		if err := strictJSON(sc.Bytes(), &l); err != nil {
			return nil, bad(line, "%v", err)
		}
		if l.End != nil {
			if err := rd.cutShort(); err != nil {
				return nil, bad(line, "%v", err)
			}
			if err := rd.joinMailboxData(); err != nil {
				return nil, bad(line, "%v", err)
			}
			if l.End.Records == nil || *l.End.Records != s.records() || l != (exportLine{End: l.End}) {
				return nil, bad(line, "the end line does not count the %d records before it", s.records())
			}
			if sc.Scan() {
				return nil, bad(line+1, "data after the end line")
			}
			if err := sc.Err(); err != nil {
				return nil, bad(line+1, "%v", err)
			}
			return s, s.checkThreads()
		}
		if err := rd.add(l); err != nil {
			return nil, bad(line, "%v", err)
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("%w: a line is longer than %d bytes", ErrBadExport, maxExportLine)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	return nil, fmt.Errorf("%w: truncated: no end line after %d records", ErrBadExport, s.records())
}

// checkThreads refuses messages whose thread the export does not hold: an
// export holds every thread of its store.
func (s *Snapshot) checkThreads() error {
	threads := make(map[string]bool, len(s.Threads))
	for _, t := range s.Threads {
		threads[t.Token] = true
	}
	for _, m := range s.Messages {
		if !threads[m.Token] {
			return fmt.Errorf("%w: message %q: its thread is not in the export", ErrBadExport, m.MessageID)
		}
	}
	return nil
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// exportReader is the state of ReadExport beyond the rows read so far.
type exportReader struct {
	s Snapshot
	// keys are the recipient keys (method, fingerprint) read, which appear
	// once each.
	keys map[[2]string]bool
	// held and mailbox are the held messages' bytes and the mailbox items'
	// data read so far.
	held, mailbox pieces
	// open is the one whose last bytes read still lack missing bytes: the
	// lines of one item's bytes follow each other.
	open    *pieces
	missing int64
	// mailboxData is what mailbox collects, joined to the mailbox items at
	// the end; mailboxIDs are the items' IDs, which appear once each.
	mailboxData []HeldBlob
	mailboxIDs  map[string]bool
}

// pieces collects bytes that the format cuts into lines of heldBlobChunk:
// held messages' (held_blob) and mailbox items' (mailbox_data).
type pieces struct {
	what string
	max  int64
	list *[]HeldBlob
	seen map[string]bool
}

func newExportReader() *exportReader {
	rd := &exportReader{keys: map[[2]string]bool{}, mailboxIDs: map[string]bool{}}
	rd.held = pieces{"held bytes", maxHeldBlobExport, &rd.s.HeldBlobs, map[string]bool{}}
	rd.mailbox = pieces{"mailbox data", maxMailboxData, &rd.mailboxData, map[string]bool{}}
	return rd
}

// cutShort refuses to go on while the bytes being read lack some.
func (rd *exportReader) cutShort() error {
	if rd.missing > 0 {
		list := *rd.open.list
		return fmt.Errorf("%s %q cut short by %d bytes", rd.open.what, list[len(list)-1].ID, rd.missing)
	}
	return nil
}

// add checks one line and adds it to the snapshot.
func (rd *exportReader) add(l exportLine) error {
	if hb := l.HeldBlob; hb != nil && l == (exportLine{HeldBlob: hb}) {
		return rd.addPiece(&rd.held, hb)
	}
	if md := l.MailboxData; md != nil && l == (exportLine{MailboxData: md}) {
		return rd.addPiece(&rd.mailbox, md)
	}
	if err := rd.cutShort(); err != nil {
		return err
	}
	if m := l.Mailbox; m != nil {
		if rd.mailboxIDs[m.ID] {
			return fmt.Errorf("mailbox item %q twice", m.ID)
		}
		rd.mailboxIDs[m.ID] = true
	}
	if k := l.RecipientKey; k != nil {
		id := [2]string{k.Method, k.Fingerprint}
		if rd.keys[id] {
			return fmt.Errorf("recipient key %s %s twice", k.Method, k.Fingerprint)
		}
		rd.keys[id] = true
	}
	return rd.s.add(l)
}

// addPiece checks one line of p's bytes: the first of an item not read
// before (offset 0), or the next piece of the one being read.
func (rd *exportReader) addPiece(p *pieces, hb *exportHeldBlob) error {
	id := string(hb.ID)
	switch {
	case len(hb.ID) == 0 || hb.Size == nil || hb.Offset == nil || hb.Data == nil:
		return fmt.Errorf("%s: want id, size, offset and data", p.what)
	case *hb.Size < 0 || *hb.Size > p.max:
		return fmt.Errorf("%s %q: size %d (at most %d)", p.what, id, *hb.Size, p.max)
	case int64(len(hb.Data)) > *hb.Size-*hb.Offset:
		return fmt.Errorf("%s %q: more than its size", p.what, id)
	}
	if *hb.Offset == 0 {
		if err := rd.cutShort(); err != nil {
			return err
		}
		if p.seen[id] {
			return fmt.Errorf("%s %q twice", p.what, id)
		}
		p.seen[id] = true
		*p.list = append(*p.list, HeldBlob{ID: id, Data: append([]byte{}, hb.Data...)})
		rd.open, rd.missing = p, *hb.Size-int64(len(hb.Data))
		return nil
	}
	list := *p.list
	last := len(list) - 1
	if rd.missing == 0 || rd.open != p || list[last].ID != id || *hb.Offset != int64(len(list[last].Data)) ||
		*hb.Size != *hb.Offset+rd.missing || len(hb.Data) == 0 {
		return fmt.Errorf("%s %q: a piece at offset %d that does not continue the one before", p.what, id, *hb.Offset)
	}
	list[last].Data = append(list[last].Data, hb.Data...)
	rd.missing -= int64(len(hb.Data))
	return nil
}

// add checks one row line and appends it to s.
func (s *Snapshot) add(l exportLine) error {
	set := 0
	for _, p := range []bool{l.Registration != nil, l.Thread != nil, l.Message != nil, l.Held != nil, l.Capabilities != nil,
		l.RecipientKey != nil, l.HeldBlob != nil, l.APIToken != nil, l.IssuedCert != nil, l.CRLNumber != nil, l.Audit != nil,
		l.Mailbox != nil, l.MailboxData != nil, l.Outbox != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%d rows in one line; want one", set)
	}
	switch {
	case l.Registration != nil:
		r := l.Registration
		reg := Registration{Address: string(r.Address), Method: r.Method, Fingerprint: r.Fingerprint, Registered: unstamp(r.Registered)}
		if err := checkRegistration(reg); err != nil {
			return err
		}
		s.Registrations = append(s.Registrations, reg)
	case l.Thread != nil:
		t := l.Thread
		th := Thread{Token: string(t.Token), Customer: string(t.Customer), Method: t.Method, Fingerprint: t.Fingerprint, Created: unstamp(t.Created), Subject: string(t.Subject)}
		if err := checkThread(th); err != nil {
			return err
		}
		s.Threads = append(s.Threads, th)
	case l.Message != nil:
		m := l.Message
		if len(m.Token) == 0 || messageIDKey(string(m.MessageID)) == "" {
			return errors.New("message: empty token or Message-ID")
		}
		s.Messages = append(s.Messages, ThreadMessage{Token: string(m.Token), MessageID: string(m.MessageID), Inbound: m.Inbound, Verdict: string(m.Verdict), At: unstamp(m.At)})
	case l.Held != nil:
		h := l.Held
		held := Held{ID: string(h.ID), Received: unstamp(h.Received), From: string(h.From), Reason: string(h.Reason), Verdict: string(h.Verdict), Ref: string(h.Ref), Released: h.Released, Delivered: h.Delivered,
			Deleted: h.Deleted, DecidedBy: string(h.DecidedBy), DecidedWhy: string(h.DecidedWhy), DecidedAt: undecidedStamp(h.DecidedAt)}
		if err := checkHeld(held); err != nil {
			return fmt.Errorf("held: %w", err)
		}
		s.Held = append(s.Held, held)
	case l.Capabilities != nil:
		c := l.Capabilities
		if err := checkStoredAddress(string(c.Address)); err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
		s.Capabilities = append(s.Capabilities, Capabilities{Address: string(c.Address), SMIMEGCM: c.SMIMEGCM, PGPSEIPDv2: c.PGPSEIPDv2, Updated: unstamp(c.Updated)})
	case l.RecipientKey != nil:
		k := l.RecipientKey
		key := RecipientKey{Method: k.Method, Fingerprint: k.Fingerprint, Data: k.Data, Added: unstamp(k.Added), Source: k.Source}
		if fp, err := checkRecipientKey(key); err != nil || fp != k.Fingerprint {
			return fmt.Errorf("recipient key %q %q: not a method, upper-case hex fingerprint, 1 to %d bytes and a source", k.Method, k.Fingerprint, MaxRecipientKey)
		}
		key.Source, _ = validSource(key.Source)
		s.RecipientKeys = append(s.RecipientKeys, key)
	case l.HeldBlob != nil || l.MailboxData != nil:
		return errors.New("bytes with a row")
	default:
		return s.addAPI(l)
	}
	return nil
}

// checkStoredAddress refuses an address the store would not have stored:
// one that NormalizeAddress refuses or changes.
func checkStoredAddress(addr string) error {
	n, err := NormalizeAddress(addr)
	if err != nil {
		return err
	}
	if n != addr {
		return fmt.Errorf("address %q is not in the stored form %q", addr, n)
	}
	return nil
}

func checkRegistration(r Registration) error {
	if err := checkStoredAddress(r.Address); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	if err := validMethod(r.Method); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	if fp, err := normalizeFingerprint(r.Fingerprint); err != nil || fp != r.Fingerprint || fp == "" {
		return fmt.Errorf("registration: fingerprint %q is not upper-case hex", r.Fingerprint)
	}
	return nil
}

func checkThread(t Thread) error {
	if t.Token == "" {
		return errors.New("thread: empty token")
	}
	if err := checkStoredAddress(t.Customer); err != nil {
		return fmt.Errorf("thread: %w", err)
	}
	if fp, err := normalizeFingerprint(t.Fingerprint); err != nil || fp != t.Fingerprint {
		return fmt.Errorf("thread: fingerprint %q is not upper-case hex", t.Fingerprint)
	}
	if t.Method != "" || t.Fingerprint != "" {
		if err := validMethod(t.Method); err != nil {
			return fmt.Errorf("thread: %w", err)
		}
	}
	return nil
}

// learnedOnly is a key's Source as an export writes it: empty for a registered key.
func learnedOnly(source string) string {
	if source == SourceRegistered {
		return ""
	}
	return source
}
