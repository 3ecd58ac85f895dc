package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// The export lines of API tokens, issued certificates, the CRL number, the
// audit log and the mailbox, and their reading and writing in both stores.
// A mailbox item's line holds its metadata; its sealed Data follows among
// the bytes, in mailbox_data lines cut as held_blob's are.

type (
	exportAPIToken struct {
		ID      string   `json:"id"`
		Name    []byte   `json:"name"`
		Hash    []byte   `json:"hash"`
		Scopes  []string `json:"scopes"`
		Created int64    `json:"created"`
		Expires int64    `json:"expires"`
		Revoked int64    `json:"revoked"`
	}
	exportIssuedCert struct {
		Serial      string `json:"serial"`
		Address     []byte `json:"address"`
		Fingerprint string `json:"fingerprint"`
		DER         []byte `json:"der"`
		NotBefore   int64  `json:"not_before"`
		NotAfter    int64  `json:"not_after"`
		Issued      int64  `json:"issued"`
		Revoked     int64  `json:"revoked"`
		Reason      int    `json:"reason"`
	}
	exportAudit struct {
		Seq    int64  `json:"seq"`
		At     int64  `json:"at"`
		Actor  []byte `json:"actor"`
		Action []byte `json:"action"`
		Target []byte `json:"target"`
		Status int    `json:"status"`
		Detail []byte `json:"detail"`
		Node   []byte `json:"node"`
	}
	exportOutbox struct {
		Line []byte `json:"line"`
		Node string `json:"node,omitempty"`
	}
	exportMailbox struct {
		ID       string `json:"id"`
		Address  []byte `json:"address"`
		Class    string `json:"class"`
		Received int64  `json:"received"`
		Expires  int64  `json:"expires"`
		Size     int    `json:"size"`
		Read     int64  `json:"read"`
	}
)

// apiLines are the row lines of s's API tokens, issued certificates, CRL
// number, audit records and mailbox items.
func apiLines(s *Snapshot) []exportLine {
	var lines []exportLine
	for _, t := range s.APITokens {
		lines = append(lines, exportLine{APIToken: &exportAPIToken{t.ID, b(t.Name), nonNil(t.Hash), t.Scopes, t.Created.UnixNano(), optStamp(t.Expires), optStamp(t.Revoked)}})
	}
	for _, c := range s.IssuedCerts {
		lines = append(lines, exportLine{IssuedCert: &exportIssuedCert{c.Serial, b(c.Address), c.Fingerprint, nonNil(c.DER),
			c.NotBefore.UnixNano(), c.NotAfter.UnixNano(), c.Issued.UnixNano(), optStamp(c.Revoked), c.Reason}})
	}
	if s.CRLNumber != 0 {
		n := s.CRLNumber
		lines = append(lines, exportLine{CRLNumber: &n})
	}
	for _, r := range s.Audit {
		lines = append(lines, exportLine{Audit: &exportAudit{r.Seq, r.At.UnixNano(), b(r.Actor), b(r.Action), b(r.Target), r.Status, b(r.Detail), b(r.Node)}})
	}
	for _, m := range s.MailboxItems {
		lines = append(lines, exportLine{Mailbox: &exportMailbox{m.ID, b(m.Address), m.Class, m.Received.UnixNano(), m.Expires.UnixNano(), m.Size, optStamp(m.Read)}})
	}
	for _, e := range s.EvidenceOutbox {
		lines = append(lines, exportLine{Outbox: &exportOutbox{e.Line, e.Node}})
	}
	return lines
}

// addAPI checks a row line of apiLines and appends it to s: values the
// store would keep, in the form it keeps them.
func (s *Snapshot) addAPI(l exportLine) error {
	switch {
	case l.APIToken != nil:
		x := l.APIToken
		t := APIToken{ID: x.ID, Name: string(x.Name), Hash: x.Hash, Scopes: x.Scopes, Created: unstamp(x.Created), Expires: optUnstamp(x.Expires), Revoked: optUnstamp(x.Revoked)}
		if scopes, err := checkAPIToken(t); err != nil || !slices.Equal(scopes, x.Scopes) {
			return fmt.Errorf("API token %q: not a valid token with sorted scopes", x.ID)
		}
		s.APITokens = append(s.APITokens, t)
	case l.IssuedCert != nil:
		x := l.IssuedCert
		c := IssuedCert{Serial: x.Serial, Address: string(x.Address), Fingerprint: x.Fingerprint, DER: x.DER, NotBefore: unstamp(x.NotBefore),
			NotAfter: unstamp(x.NotAfter), Issued: unstamp(x.Issued), Revoked: optUnstamp(x.Revoked), Reason: x.Reason}
		if n, err := checkIssuedCert(c); err != nil || n.Serial != c.Serial || n.Address != c.Address || n.Fingerprint != c.Fingerprint {
			return fmt.Errorf("issued certificate %q: not a valid certificate in the stored form", x.Serial)
		}
		s.IssuedCerts = append(s.IssuedCerts, c)
	case l.CRLNumber != nil:
		if *l.CRLNumber <= 0 || s.CRLNumber != 0 {
			return errors.New("crl_number: not one positive number")
		}
		s.CRLNumber = *l.CRLNumber
	case l.Audit != nil:
		x := l.Audit
		r := AuditRecord{Seq: x.Seq, At: unstamp(x.At), Actor: string(x.Actor), Action: string(x.Action), Target: string(x.Target), Status: x.Status, Detail: string(x.Detail), Node: string(x.Node)}
		if err := checkAudit(r); err != nil {
			return fmt.Errorf("audit record %d: %w", x.Seq, err)
		}
		if n := len(s.Audit); x.Seq <= 0 || n > 0 && x.Seq <= s.Audit[n-1].Seq {
			return fmt.Errorf("audit record %d: Seq not increasing", x.Seq)
		}
		s.Audit = append(s.Audit, r)
	case l.Mailbox != nil:
		x := l.Mailbox
		m := MailboxItem{ID: x.ID, Address: string(x.Address), Class: x.Class, Received: unstamp(x.Received), Expires: unstamp(x.Expires), Size: x.Size, Read: optUnstamp(x.Read)}
		probe := m
		probe.Data = []byte{0} // checked when its data is joined
		if n, err := checkMailboxItem(probe); err != nil || n.Address != m.Address || x.Expires == 0 {
			return fmt.Errorf("mailbox item %q: not a valid item in the stored form", x.ID)
		}
		s.MailboxItems = append(s.MailboxItems, m)
	case l.Outbox != nil:
		e := OutboxEntry{Node: l.Outbox.Node, Line: l.Outbox.Line}
		if err := checkOutboxEntry(e); err != nil {
			return fmt.Errorf("evidence outbox: %w", err)
		}
		s.EvidenceOutbox = append(s.EvidenceOutbox, e)
	default:
		return errors.New("a line of no known kind")
	}
	return nil
}

// joinMailboxData gives each mailbox item the data read for it: each item
// has data, of 1 byte to maxMailboxData, and all data has its item.
func (rd *exportReader) joinMailboxData() error {
	data := make(map[string][]byte, len(rd.mailboxData))
	for _, d := range rd.mailboxData {
		data[d.ID] = d.Data
	}
	for i, m := range rd.s.MailboxItems {
		d, ok := data[m.ID]
		if !ok || len(d) == 0 {
			return fmt.Errorf("mailbox item %q: no data", m.ID)
		}
		rd.s.MailboxItems[i].Data = d
		delete(data, m.ID)
	}
	for id := range data {
		return fmt.Errorf("mailbox data %q: no such item", id)
	}
	return nil
}

// snapshotAPI reads, in the transaction of c, the rows of apiLines into
// snap; kinds without rows stay nil, as ReadExport leaves them.
func snapshotAPI(ctx context.Context, c conn, snap *Snapshot) error {
	var err error
	if snap.APITokens, err = listAPITokens(ctx, c); err != nil {
		return err
	}
	if snap.IssuedCerts, err = issuedCertRows(ctx, c, `SELECT `+issuedColumns+` FROM issued_certs ORDER BY issued, serial`); err != nil {
		return err
	}
	if snap.CRLNumber, err = crlNumber(ctx, c); err != nil {
		return err
	}
	if snap.Audit, err = auditRows(ctx, c, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq`); err != nil {
		return err
	}
	snap.MailboxItems = []MailboxItem{}
	err = c.query(ctx, `SELECT `+mailboxColumns+`, data FROM mailbox ORDER BY received, id`, nil, func(r scanner) error {
		m, err := scanMailboxItem(r, true)
		snap.MailboxItems = append(snap.MailboxItems, m)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	err = c.query(ctx, `SELECT line, node FROM evidence_outbox ORDER BY seq`, nil, func(r scanner) error {
		var e OutboxEntry
		err := r.Scan(&e.Line, &e.Node)
		snap.EvidenceOutbox = append(snap.EvidenceOutbox, e)
		return err
	})
	if err != nil {
		return fmt.Errorf("evidence outbox: %w", err)
	}
	snap.APITokens, snap.IssuedCerts, snap.Audit, snap.MailboxItems = nilIfEmpty(snap.APITokens), nilIfEmpty(snap.IssuedCerts),
		nilIfEmpty(snap.Audit), nilIfEmpty(snap.MailboxItems)
	return nil
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// importAPI adds, in the transaction of c, the rows of apiLines that the
// store lacks, counting them in n: tokens, certificates and mailbox items
// by their IDs and serials, with the revocation of a token or certificate
// stored unrevoked carried over; audit records as importAudit does; the CRL
// number raised to the export's, never lowered.
func importAPI(ctx context.Context, db database, c conn, snap *Snapshot, n *ImportCounts) error {
	for _, t := range snap.APITokens {
		if err := importAPIToken(ctx, c, t, &n.APITokens); err != nil {
			return fmt.Errorf("API token %s: %w", t.ID, err)
		}
	}
	for _, ic := range snap.IssuedCerts {
		if err := importIssuedCert(ctx, c, ic, &n.IssuedCerts); err != nil {
			return fmt.Errorf("issued certificate %s: %w", ic.Serial, err)
		}
	}
	if snap.CRLNumber > 0 {
		if _, err := c.exec(ctx, `INSERT INTO crl_number (id, number) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET number = excluded.number WHERE crl_number.number < excluded.number`, snap.CRLNumber); err != nil {
			return fmt.Errorf("CRL number: %w", err)
		}
	}
	if err := importAudit(ctx, db, c, snap.Audit, &n.Audit); err != nil {
		return err
	}
	for _, m := range snap.MailboxItems {
		m, err := checkMailboxItem(m)
		if err != nil {
			return fmt.Errorf("mailbox item %s: %w", m.ID, err)
		}
		added, err := insertMailboxItem(ctx, c, m)
		if err != nil {
			return fmt.Errorf("mailbox item %s: %w", m.ID, err)
		}
		if added {
			n.MailboxItems++
		}
	}
	// Each record is queued as many times as the export holds it, less those the outbox holds:
	// importing again queues nothing twice (one the source's gateway appended after its export is
	// queued again, and its log may then hold it twice, as after a crash between append and take).
	want := map[outboxKey]int{}
	for _, e := range snap.EvidenceOutbox {
		k := outboxKey{e.Node, string(e.Line)}
		want[k]++
		var held int
		if err := c.queryRow(ctx, `SELECT COUNT(*) FROM evidence_outbox WHERE line = $1 AND node = $2`, e.Line, e.Node).Scan(&held); err != nil {
			return fmt.Errorf("evidence outbox: %w", err)
		}
		if held >= want[k] {
			continue
		}
		if err := queueEntry(ctx, c, e); err != nil {
			return fmt.Errorf("evidence outbox: %w", err)
		}
		n.EvidenceOutbox++
	}
	return nil
}

func importAPIToken(ctx context.Context, c conn, t APIToken, count *int) error {
	scopes, err := checkAPIToken(t)
	if err != nil {
		return err
	}
	changed, err := c.exec(ctx, insertToken, tokenArgs(t, scopes)...)
	if err == nil && changed == 0 && !t.Revoked.IsZero() {
		changed, err = c.exec(ctx, `UPDATE api_tokens SET revoked = $2 WHERE id = $1 AND hash = $3 AND revoked = 0`, t.ID, t.Revoked.UnixNano(), t.Hash)
	}
	*count += int(changed)
	return err
}

func importIssuedCert(ctx context.Context, c conn, ic IssuedCert, count *int) error {
	ic, err := checkIssuedCert(ic)
	if err != nil {
		return err
	}
	added, err := insertIssuedCert(ctx, c, ic)
	if err != nil {
		return err
	}
	if added {
		*count++
		return nil
	}
	if ic.Revoked.IsZero() {
		return nil
	}
	changed, err := c.exec(ctx, `UPDATE issued_certs SET revoked = $2, reason = $3 WHERE serial = $1 AND fingerprint = $4 AND revoked = 0`,
		ic.Serial, ic.Revoked.UnixNano(), ic.Reason, ic.Fingerprint)
	*count += int(changed)
	return err
}

// outboxKey is a queued line with the node it is for.
type outboxKey struct{ node, line string }
