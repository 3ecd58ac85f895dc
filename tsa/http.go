package tsa

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strconv"
)

// RFC 3161 section 3.4 media types.
const (
	mediaTypeQuery = "application/timestamp-query"
	mediaTypeReply = "application/timestamp-reply"
)

// maxQueryBytes caps a time-stamp query read by ServeHTTP. A SHA-512 query with a nonce and a
// policy is under 150 bytes; 64 KiB leaves room for extensions while bounding memory per request.
const maxQueryBytes = 64 << 10

// ServeHTTP implements the RFC 3161 section 3.4 HTTP binding: a POST of an application/timestamp-query
// is answered with an application/timestamp-reply.
//
// Problems with the HTTP request itself get HTTP errors: 405 for another method, 415 for another
// content type, 413 for a body over 64 KiB. Problems with the query get a TimeStampResp with status
// rejection and a failure bit, as RFC 3161 asks: badDataFormat for an undecodable query, badAlg for
// SHA-1, MD5 or any hash other than SHA-256/384/512, unacceptedPolicy for a policy other than the
// Authority's, unacceptedExtension for any extension (none is supported). The request's hash
// algorithm, nonce and certReq are honoured.
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "time-stamp queries must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaTypeQuery {
		http.Error(w, "content type must be "+mediaTypeQuery, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQueryBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "time-stamp query too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading time-stamp query failed", http.StatusBadRequest)
		return
	}
	writeReply(w, a.respond(body))
}

// respond turns a DER query into a DER TimeStampResp, granted or rejected. A panic anywhere in
// decoding or signing attacker-chosen values becomes a rejection instead of a crashed handler.
func (a *Authority) respond(query []byte) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			resp = rejectionResponse(FailBadDataFormat, "undecodable request")
		}
	}()
	q, fail, text := parseQuery(query, a.policy)
	if fail != 0 {
		return rejectionResponse(fail, text)
	}
	t, err := a.token(q.hash, q.digest, q.nonce, q.certReq)
	if err == nil {
		resp, err = grantedResponse(t.der)
	}
	if err != nil {
		// Details (an expired certificate, an HSM error) are for our logs, not for the client.
		return rejectionResponse(FailSystemFailure, "time-stamping service unavailable")
	}
	return resp
}

func writeReply(w http.ResponseWriter, resp []byte) {
	w.Header().Set("Content-Type", mediaTypeReply)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp) // an error means the client went away: nothing to do
}

// query is a checked time-stamp request.
type query struct {
	hash    crypto.Hash
	digest  []byte
	nonce   *big.Int
	certReq bool
}

// parseQuery decodes and checks a TimeStampReq against what the Authority offers. On refusal it
// returns the failure bit and a short text for the client.
func parseQuery(der []byte, policy asn1.ObjectIdentifier) (q query, fail FailureInfo, text string) {
	var req timeStampReq
	if err := unmarshalDER(der, &req); err != nil {
		return query{}, FailBadDataFormat, "undecodable request"
	}
	if req.Version != 1 {
		return query{}, FailBadDataFormat, "unsupported request version"
	}
	alg := req.MessageImprint.HashAlgorithm.Algorithm
	h, ok := strongHash(alg)
	if !ok {
		return query{}, FailBadAlg, fmt.Sprintf("hash algorithm %s not accepted; use SHA-256, SHA-384 or SHA-512", hashName(alg))
	}
	if len(req.MessageImprint.HashedMessage) != h.Size() {
		return query{}, FailBadDataFormat, "message imprint length does not match its hash algorithm"
	}
	if len(req.ReqPolicy) > 0 && !req.ReqPolicy.Equal(policy) {
		return query{}, FailUnacceptedPolicy, "requested policy not supported"
	}
	if len(req.Extensions) > 0 {
		return query{}, FailUnacceptedExtension, "extensions not supported"
	}
	return query{hash: h, digest: req.MessageImprint.HashedMessage, nonce: req.Nonce, certReq: req.CertReq}, 0, ""
}

// rejectionResponse builds a TimeStampResp with status rejection, one failure bit and a text.
// digitorus/timestamp's CreateErrorResponse has no text, so it is built here.
func rejectionResponse(fail FailureInfo, text string) []byte {
	bit := 0
	for fail>>(bit+1) != 0 {
		bit++
	}
	bits := make([]byte, bit/8+1)
	bits[bit/8] = 0x80 >> (bit % 8)
	type statusInfo struct {
		Status       int
		StatusString []asn1.RawValue
		FailInfo     asn1.BitString
	}
	resp, err := asn1.Marshal(struct{ Status statusInfo }{statusInfo{
		Status:       int(StatusRejection),
		StatusString: []asn1.RawValue{{Tag: asn1.TagUTF8String, Bytes: []byte(text)}},
		FailInfo:     asn1.BitString{Bytes: bits, BitLength: bit + 1},
	}})
	if err != nil {
		// Cannot happen (fixed structure, our own UTF-8 text); answer a bare rejection rather than panic.
		return []byte{0x30, 0x05, 0x30, 0x03, 0x02, 0x01, byte(StatusRejection)}
	}
	return resp
}
