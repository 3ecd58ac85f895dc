package api_test

import (
	"fmt"
	"time"

	"github.com/sealpost/sealpost/api"
)

// A token's secret is shown once; the store keeps its SHA-256, by which each call is looked up.
func ExampleNewToken() {
	secret, tok, err := api.NewToken("online banking", []string{api.ScopeCustomers}, time.Now(), time.Time{})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(secret), secret[:4], tok.ID[:4], tok.Scopes, len(tok.Hash))
	// Output: 36 spk_ tok_ [customers] 32
}

// The problem types a client can branch on.
func ExampleProblemTypes() {
	for _, p := range api.ProblemTypes()[:3] {
		fmt.Println(p.Status, p.URI())
	}
	// Output:
	// 401 urn:sealpost:problem:unauthorized
	// 403 urn:sealpost:problem:forbidden
	// 404 urn:sealpost:problem:not-found
}
