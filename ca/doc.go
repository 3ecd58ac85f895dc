// Package ca is the bank's private S/MIME CA for its customers: it issues a customer's certificate
// from a PKCS#10 request made on the customer's device (IssueFromCSR) or, for clients that import
// only a PKCS#12 (iOS Mail, Outlook), with a key it makes and hands over once (IssueWithKey); it
// revokes what it issued and signs the CRL that every certificate names.
//
// Invariants:
//   - a certificate names exactly the address it is issued for (subject CN and one rfc822Name),
//     whatever the request asks: a request that names another address, an extra one, or a DNS, IP
//     or URI name is refused (ErrWrongAddress), and so is one whose signature does not verify or
//     that is not a request at all (ErrBadCSR), or whose key is weak (ErrWeakKey);
//   - nothing is stored for a refused request; an issued certificate is in the store (PutIssuedCert)
//     before it is returned, so it can always be revoked;
//   - the CA keeps no customer's private key: IssueWithKey's key leaves only inside the PKCS#12,
//     under a generated password that is returned once and never stored;
//   - a customer revokes only certificates issued to their own address (ErrNotFound otherwise).
//
// The CA's key is a crypto.Signer (keys.Identity): a file in the data directory or a key in the
// HSM. Its identity is the "customer-ca" role of package keys.
package ca
