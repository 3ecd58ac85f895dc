package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// openAPIDoc is the part of the OpenAPI document the checks read.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comps   struct {
		Schemas struct {
			Problem struct {
				Properties struct {
					Type struct {
						Enum []string `json:"enum"`
					} `json:"type"`
				} `json:"properties"`
				Types []struct {
					Type   string `json:"type"`
					Status int    `json:"status"`
					Title  string `json:"title"`
				} `json:"x-problem-types"`
			} `json:"Problem"`
		} `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	Responses map[string]json.RawMessage `json:"responses"`
	Security  *[]map[string][]string     `json:"security"`
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// TestOpenAPIDocument: api/openapi.json is valid JSON, OpenAPI 3.1.0; every route of the route
// table is in it with exactly its statuses (and a security requirement unless the route needs no
// token), every documented operation is a route, and the problem types are exactly the table's.
func TestOpenAPIDocument(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, OpenAPI()) {
		t.Fatal("the embedded document is not api/openapi.json")
	}
	if !json.Valid(raw) {
		t.Fatal("openapi.json is not valid JSON")
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	routes := map[string]route{}
	for _, rt := range routeTable() {
		routes[rt.Method+" "+rt.Pattern] = rt
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for m, opRaw := range item {
			if !slices.Contains(httpMethods, m) {
				continue // parameters, summary…
			}
			key := http.MethodGet
			switch m {
			case "put":
				key = http.MethodPut
			case "post":
				key = http.MethodPost
			case "delete":
				key = http.MethodDelete
			case "get":
			default:
				t.Errorf("%s %s: a method the server has no route for", m, path)
				continue
			}
			key += " " + path
			documented[key] = true
			rt, ok := routes[key]
			if !ok {
				t.Errorf("%s is documented but the server has no such route", key)
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(opRaw, &op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			var got []int
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status code", key, code)
				}
				got = append(got, n)
			}
			sort.Ints(got)
			if !slices.Equal(got, rt.Statuses) {
				t.Errorf("%s: documented statuses %v, the route answers %v", key, got, rt.Statuses)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if public != (rt.Scope == "") {
				t.Errorf("%s: documented without a token: %v, route scope %q", key, public, rt.Scope)
			}
		}
	}
	for key := range routes {
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	var want, gotEnum []string
	for _, p := range ProblemTypes() {
		want = append(want, p.URI())
	}
	gotEnum = doc.Comps.Schemas.Problem.Properties.Type.Enum
	if !slices.Equal(gotEnum, want) {
		t.Errorf("Problem.type enum %v, want %v", gotEnum, want)
	}
	types := doc.Comps.Schemas.Problem.Types
	if len(types) != len(ProblemTypes()) {
		t.Fatalf("x-problem-types lists %d, want %d", len(types), len(ProblemTypes()))
	}
	for i, p := range ProblemTypes() {
		if types[i].Type != p.URI() || types[i].Status != p.Status || types[i].Title != p.Title {
			t.Errorf("x-problem-types[%d] = %+v, want %s %d %q", i, types[i], p.URI(), p.Status, p.Title)
		}
	}
}

// TestServesOpenAPI: GET /v1/openapi.json needs no token and is the committed document.
func TestServesOpenAPI(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	a := f.do(http.MethodGet, "/v1/openapi.json", "", nil)
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" || !bytes.Equal(a.body, OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json: %d %s", a.status, a.header.Get("Content-Type"))
	}
}

// TestREADMEListsProblemTypes: README.md's table names every problem type with its status.
func TestREADMEListsProblemTypes(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ProblemTypes() {
		row := "| `" + p.URI() + "` | " + strconv.Itoa(p.Status) + " |"
		if !bytes.Contains(readme, []byte(row)) {
			t.Errorf("README.md has no row %q", row)
		}
	}
}
