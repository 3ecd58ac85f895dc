// Package api is the bank's HTTPS JSON API: the calls online banking, the CRM and core banking make
// to sealpost, starting with the registration of customers' keys.
//
// Invariants:
//   - Every call but GET /v1/openapi.json needs a token (Authorization: Bearer spk_…) with the
//     route's scope. The store keeps only the SHA-256 of a token's secret and each call looks the
//     token up by it, so a revoked token is refused from the next call on, on every node. A missing,
//     unknown, expired or revoked token all get the same 401 problem.
//   - A key is registered with the checks of `sealpost keys import` (RegisterImported and
//     StoreImported are the one path both take), only for the customer's address, and only when it
//     names that address and no other; private keys are refused. A refused request stores nothing.
//   - Every call is audited (AppendAudit: the token's ID, the route pattern, the customer's address,
//     the status, the node) and logged; neither ever holds a secret, a body or a key.
//   - The route table (routeTable) is the one list of calls: the server serves exactly it, and a
//     test holds api/openapi.json to it, statuses included.
//
// Errors: every refusal is an RFC 9457 problem document (application/problem+json) whose type is
// one of ProblemTypes, stable across releases; its detail never holds a secret and quotes input only
// as a short printable excerpt. An internal error is "internal" with no detail; its text goes to the
// log. A call with an Idempotency-Key (POST, PUT) runs once per token and key: a replay gets the
// stored answer, except that a 5xx answer is not kept.
package api
