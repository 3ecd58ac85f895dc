package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The secure mailbox holds the messages of keyless customers, which online
// banking shows them. Each item's Data arrives sealed by the caller
// (AES-256-GCM under the bank's mailbox key, which the store never holds):
// a dump of the database holds no message in clear.

// Limits of a mailbox item.
const (
	maxMailboxID   = 64
	maxMailboxData = 64 << 20
	maxClass       = 32
)

// MailboxItem is a message waiting in a customer's secure mailbox.
type MailboxItem struct {
	// ID is chosen by the caller, unique: 1 to 64 of A-Z a-z 0-9 _ -.
	ID string
	// Address is the customer's address, stored normalised.
	Address string
	// Class is the message class, 1 to 32 letters a-z.
	Class string
	// Received defaults to the current time when zero.
	Received time.Time
	// Expires must be set: from then on the item is gone for every method,
	// and ExpireMailbox removes it.
	Expires time.Time
	// Size is the size of the message as sent (the caller says; not
	// len(Data)), not negative.
	Size int
	// Data is the message SEALED by the caller: the store never sees
	// plaintext; 1 byte to 64 MiB. MailboxItems leaves it nil.
	Data []byte
	// Read is zero while the customer has not read the item.
	Read time.Time
}

// checkMailboxID refuses an ID that is not 1 to 64 of A-Z a-z 0-9 _ -.
func checkMailboxID(id string) error {
	if len(id) == 0 || len(id) > maxMailboxID {
		return fmt.Errorf("%w: mailbox item ID of %d characters (want 1 to %d)", ErrInvalid, len(id), maxMailboxID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return fmt.Errorf("%w: mailbox item ID %q (want A-Z a-z 0-9 _ -)", ErrInvalid, id)
		}
	}
	return nil
}

// checkMailboxItem returns m with its address normalised, or ErrInvalid.
func checkMailboxItem(m MailboxItem) (MailboxItem, error) {
	if err := checkMailboxID(m.ID); err != nil {
		return MailboxItem{}, err
	}
	var err error
	if m.Address, err = NormalizeAddress(m.Address); err != nil {
		return MailboxItem{}, err
	}
	switch {
	case !lowerWord(m.Class, maxClass):
		return MailboxItem{}, fmt.Errorf("%w: class %q (want 1 to %d letters a-z)", ErrInvalid, m.Class, maxClass)
	case m.Expires.IsZero():
		return MailboxItem{}, fmt.Errorf("%w: mailbox item %s without expiry", ErrInvalid, m.ID)
	case m.Size < 0:
		return MailboxItem{}, fmt.Errorf("%w: mailbox item size %d", ErrInvalid, m.Size)
	case len(m.Data) == 0 || len(m.Data) > maxMailboxData:
		return MailboxItem{}, fmt.Errorf("%w: mailbox item of %d bytes (want 1 to %d)", ErrInvalid, len(m.Data), maxMailboxData)
	}
	return m, nil
}

// mailboxColumns are the columns of a mailbox item but its data, which
// follows them where it is read.
const mailboxColumns = `id, address, class, received, expires, size, read_at`

func scanMailboxItem(r scanner, data bool) (MailboxItem, error) {
	var m MailboxItem
	var addr []byte
	var received, expires, read int64
	dest := []any{&m.ID, &addr, &m.Class, &received, &expires, &m.Size, &read}
	if data {
		dest = append(dest, &m.Data)
	}
	if err := r.Scan(dest...); err != nil {
		return MailboxItem{}, err
	}
	m.Address = string(addr)
	m.Received, m.Expires, m.Read = unstamp(received), unstamp(expires), optUnstamp(read)
	return m, nil
}

// insertMailboxItem stores m, which is checked, unless its ID is taken; it
// reports whether it did.
func insertMailboxItem(ctx context.Context, c conn, m MailboxItem) (bool, error) {
	n, err := c.exec(ctx, `INSERT INTO mailbox (`+mailboxColumns+`, data, address_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING`, m.ID, b(m.Address), m.Class, stamp(m.Received), m.Expires.UnixNano(), m.Size, optStamp(m.Read),
		m.Data, b(foldAddress(m.Address)))
	return n > 0, err
}

func putMailboxItem(ctx context.Context, db database, m MailboxItem) error {
	m, err := checkMailboxItem(m)
	if err != nil {
		return err
	}
	added, err := insertMailboxItem(ctx, db, m)
	if err != nil {
		return fmt.Errorf("put mailbox item: %w", err)
	}
	if !added {
		return fmt.Errorf("put mailbox item %s: ID taken: %w", m.ID, ErrConflict)
	}
	return nil
}

func mailboxItems(ctx context.Context, db database, address string) ([]MailboxItem, error) {
	key, err := AddressKey(address)
	if err != nil {
		return nil, err
	}
	out := []MailboxItem{}
	err = db.query(ctx, `SELECT `+mailboxColumns+` FROM mailbox WHERE address_key = $1 AND expires > $2 ORDER BY received, id`,
		[]any{b(key), time.Now().UnixNano()}, func(r scanner) error {
			m, err := scanMailboxItem(r, false)
			out = append(out, m)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("mailbox items: %w", err)
	}
	return out, nil
}

// mailboxItemOf selects the unexpired item $1 of the customer with
// AddressKey $2 at $3.
const mailboxItemOf = `id = $1 AND address_key = $2 AND expires > $3`

// mailboxKey checks address and id and returns the arguments of
// mailboxItemOf.
func mailboxKey(address, id string) ([]any, error) {
	key, err := AddressKey(address)
	if err != nil {
		return nil, err
	}
	if err := checkMailboxID(id); err != nil {
		return nil, err
	}
	return []any{id, b(key), time.Now().UnixNano()}, nil
}

func mailboxItem(ctx context.Context, db database, address, id string) (MailboxItem, error) {
	args, err := mailboxKey(address, id)
	if err != nil {
		return MailboxItem{}, err
	}
	m, err := scanMailboxItem(db.queryRow(ctx, `SELECT `+mailboxColumns+`, data FROM mailbox WHERE `+mailboxItemOf, args...), true)
	if errors.Is(err, errNoRows) {
		return MailboxItem{}, fmt.Errorf("mailbox item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return MailboxItem{}, fmt.Errorf("mailbox item: %w", err)
	}
	return m, nil
}

func markMailboxRead(ctx context.Context, db database, address, id string, at time.Time) error {
	args, err := mailboxKey(address, id)
	if err != nil {
		return err
	}
	// One statement: the first reader's time stays.
	n, err := db.exec(ctx, `UPDATE mailbox SET read_at = CASE WHEN read_at = 0 THEN $4 ELSE read_at END WHERE `+mailboxItemOf,
		append(args, stamp(at))...)
	if err != nil {
		return fmt.Errorf("mark mailbox item read: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("mark mailbox item %s read: %w", id, ErrNotFound)
	}
	return nil
}

func expireMailbox(ctx context.Context, db database, now time.Time) (int, error) {
	n, err := db.exec(ctx, `DELETE FROM mailbox WHERE expires <= $1`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("expire mailbox: %w", err)
	}
	return int(n), nil
}

func mailboxCounts(ctx context.Context, db database) (waiting, read int, err error) {
	err = db.queryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN read_at = 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN read_at <> 0 THEN 1 ELSE 0 END), 0)
		FROM mailbox WHERE expires > $1`, time.Now().UnixNano()).Scan(&waiting, &read)
	if err != nil {
		return 0, 0, fmt.Errorf("mailbox counts: %w", err)
	}
	return waiting, read, nil
}

// PutMailboxItem stores m (address normalised, Received defaulting to now);
// ErrInvalid for a malformed item, ErrConflict when its ID is taken.
func (s *SQLite) PutMailboxItem(ctx context.Context, m MailboxItem) error {
	return putMailboxItem(ctx, s.sql(), m)
}

// PutMailboxItem stores m (address normalised, Received defaulting to now);
// ErrInvalid for a malformed item, ErrConflict when its ID is taken.
func (p *Postgres) PutMailboxItem(ctx context.Context, m MailboxItem) error {
	return putMailboxItem(ctx, p.sql(), m)
}

// MailboxItems lists the unexpired items of the customer address (compared
// by AddressKey), by Received and then ID, without their Data (nil).
func (s *SQLite) MailboxItems(ctx context.Context, address string) ([]MailboxItem, error) {
	return mailboxItems(ctx, s.sql(), address)
}

// MailboxItems lists the unexpired items of the customer address (compared
// by AddressKey), by Received and then ID, without their Data (nil).
func (p *Postgres) MailboxItems(ctx context.Context, address string) ([]MailboxItem, error) {
	return mailboxItems(ctx, p.sql(), address)
}

// MailboxItem returns the unexpired item id of the customer address, with
// its Data; ErrNotFound also when id is another customer's or expired.
func (s *SQLite) MailboxItem(ctx context.Context, address, id string) (MailboxItem, error) {
	return mailboxItem(ctx, s.sql(), address, id)
}

// MailboxItem returns the unexpired item id of the customer address, with
// its Data; ErrNotFound also when id is another customer's or expired.
func (p *Postgres) MailboxItem(ctx context.Context, address, id string) (MailboxItem, error) {
	return mailboxItem(ctx, p.sql(), address, id)
}

// MarkMailboxRead records that the customer read item id at at (now when
// zero), keeping the first time when marked again; ErrNotFound as for
// MailboxItem.
func (s *SQLite) MarkMailboxRead(ctx context.Context, address, id string, at time.Time) error {
	return markMailboxRead(ctx, s.sql(), address, id, at)
}

// MarkMailboxRead records that the customer read item id at at (now when
// zero), keeping the first time when marked again; ErrNotFound as for
// MailboxItem.
func (p *Postgres) MarkMailboxRead(ctx context.Context, address, id string, at time.Time) error {
	return markMailboxRead(ctx, p.sql(), address, id, at)
}

// ExpireMailbox deletes the items with Expires <= now and returns how many.
func (s *SQLite) ExpireMailbox(ctx context.Context, now time.Time) (int, error) {
	return expireMailbox(ctx, s.sql(), now)
}

// ExpireMailbox deletes the items with Expires <= now and returns how many.
func (p *Postgres) ExpireMailbox(ctx context.Context, now time.Time) (int, error) {
	return expireMailbox(ctx, p.sql(), now)
}

// MailboxCounts counts the unexpired items not read yet (waiting) and read.
func (s *SQLite) MailboxCounts(ctx context.Context) (waiting, read int, err error) {
	return mailboxCounts(ctx, s.sql())
}

// MailboxCounts counts the unexpired items not read yet (waiting) and read.
func (p *Postgres) MailboxCounts(ctx context.Context) (waiting, read int, err error) {
	return mailboxCounts(ctx, p.sql())
}
