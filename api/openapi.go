package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the API's OpenAPI 3.1 description, committed beside the code; a test holds
// it to the route table and the problem types.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document the server serves at GET /v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

func (s *Server) openAPI(*call) (response, error) {
	return response{status: http.StatusOK, contentType: "application/json", body: openAPIDocument}, nil
}
