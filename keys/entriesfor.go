package keys

// EntriesFor lists, as Entries does, the certificates and OpenPGP keys a lookup of addr considers
// (see Directory for case variants), without going through the whole directory: the bank's API
// answers for one customer at a time.
func (d *Directory) EntriesFor(addr string) ([]Entry, error) {
	now := d.now()
	_, spellings, err := d.match(addr, now)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, c := range d.certificatesFor(spellings) {
		e := Entry{Certificate: c, Addresses: c.EmailAddresses}
		if p := d.Check(c); p != nil {
			e.Problem = p
		}
		out = append(out, e)
	}
	for _, c := range d.pgpCandidatesFor(spellings) {
		out = append(out, Entry{PGPKey: c.key, Addresses: PGPAddresses(c.key, now), Problem: d.CheckPGP(c.key), pgpExpires: pgpExpiry(c.key, now)})
	}
	return out, nil
}
