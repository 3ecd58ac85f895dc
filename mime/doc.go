// Package mime is sealpost's one MIME layer: every package that reads or writes a message's MIME
// structure does it here, once per message and direction.
//
//   - Reading: Parse builds an entity tree over the received bytes (Entity: raw bytes of the whole
//     entity and of each header field, the body, the media type, the parts), bounded in depth and
//     in entities, never panicking; Entity.Encode writes an untouched entity back byte for byte.
//   - Walking: Walk (WalkMessage, InspectWith) goes once from the root through the protection
//     layers of any protocol given as a Layer (smime.Layer, pgp.Layer), so S/MIME and OpenPGP
//     layers may nest; plain multiparts are entered towards their first protected part.
//   - Preparing: Prepare (PrepareEntity) splits the header that stays outside from the entity that
//     is signed (RFC 9788's Cryptographic Payload), makes that entity canonical so that what is
//     signed is exactly what is sent, and applies header protection; outbound prepares once per
//     variant and hands the same Prepared to every protector.
//   - Writing: Multipart is the one builder of multipart bodies (signed and encrypted framing,
//     the legacy display, the DSN, the desk's message), choosing a boundary not in its parts.
//
// Invariants: Content is CRLF, 7-bit, free of trailing white space and "From " lines, with lines of
// at most 998 octets: no relay has a reason to alter it. Outer is 7-bit too. With header protection
// on an encrypted message, Outer holds only the fields exposedField allows (and the hop's trace
// fields): nothing else of the header leaves outside the encryption. Errors wrap ErrMalformed (the
// sender's message cannot be made canonical) or ErrNoFrom; Walk's depth bound is ErrTooDeep.
package mime
