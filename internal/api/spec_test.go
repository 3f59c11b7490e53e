package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// loadSpec parses and validates the embedded openapi.json, once.
func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		specDoc, specErr = openapi3.NewLoader().LoadFromData(openAPISpec)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		specRouter, specErr = legacy.NewRouter(specDoc)
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return specDoc, specRouter
}

// CheckAgainstSpec fails t unless the response (status, header, body) to
// req is one openapi.json allows. A request no documented operation matches
// (an unknown path, a method the path lacks) must get a problem document.
// HEAD answers are checked as their GET's, without the body.
func CheckAgainstSpec(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	doc, router := loadSpec(t)
	find := req.Clone(context.Background())
	// Route on the escaped path, so that a %2F stays inside its segment as
	// it does for the server's mux.
	find.URL = &url.URL{Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery}
	head := req.Method == http.MethodHead
	if head {
		find.Method = http.MethodGet
	}
	route, params, err := router.FindRoute(find)
	if err != nil {
		if status < 400 {
			t.Errorf("%s %.200s: %d, but the spec documents no such operation (%v)", req.Method, req.URL, status, err)
			return
		}
		checkProblemBody(t, doc, req, header, body)
		return
	}
	if head {
		if len(body) != 0 {
			t.Errorf("HEAD %.200s: a body of %d bytes", req.URL, len(body))
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %.200s: the %d answer breaks openapi.json: %.500v\nbody: %.300s", req.Method, req.URL, status, err, body)
	}
}

// checkProblemBody checks a problem document against the spec's Problem
// schema, for answers no operation of the spec covers.
func checkProblemBody(t testing.TB, doc *openapi3.T, req *http.Request, header http.Header, body []byte) {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %.200s: content type %q, want application/problem+json", req.Method, req.URL, ct)
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s %.200s: problem is not JSON: %v: %.300s", req.Method, req.URL, err, body)
		return
	}
	if err := doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s %.200s: not a Problem: %.500v: %.300s", req.Method, req.URL, err, body)
	}
}

// CheckProblemBody is checkProblemBody for tests whose request net/http
// could not even parse.
func CheckProblemBody(t testing.TB, header http.Header, body []byte) {
	t.Helper()
	doc, _ := loadSpec(t)
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	checkProblemBody(t, doc, req, header, body)
}

var wildcardRE = regexp.MustCompile(`\{([^}]+)\}`)

// TestSpecMatchesRoutes holds openapi.json and the mux's routes (routes.go)
// to each other: the same paths, each with the one documented method, the
// same path parameters and the same query parameters.
func TestSpecMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	srv, err := New(Config{}, &fakeUsers{}, nil, prometheus.NewRegistry(), discard())
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]route{}
	for _, rt := range srv.routes() {
		served[rt.pattern] = rt
		if rt.handler == nil {
			t.Errorf("%s: not served even with a metrics registry", rt.pattern)
		}
	}
	var specPaths []string
	for path, item := range doc.Paths.Map() {
		specPaths = append(specPaths, path)
		rt, ok := served[path]
		if !ok {
			t.Errorf("openapi.json documents %s, which the server does not route", path)
			continue
		}
		var methods []string
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		if !slices.Equal(methods, []string{rt.method}) {
			t.Errorf("%s: openapi.json documents %v, the route serves %s", path, methods, rt.method)
			continue
		}
		op := item.GetOperation(rt.method)
		var inPath, inQuery []string
		for _, p := range append(item.Parameters, op.Parameters...) {
			switch p.Value.In {
			case openapi3.ParameterInPath:
				inPath = append(inPath, p.Value.Name)
			case openapi3.ParameterInQuery:
				inQuery = append(inQuery, p.Value.Name)
			}
		}
		var wantPath []string
		for _, m := range wildcardRE.FindAllStringSubmatch(rt.pattern, -1) {
			wantPath = append(wantPath, m[1])
		}
		sort.Strings(inPath)
		sort.Strings(wantPath)
		if !slices.Equal(inPath, wantPath) {
			t.Errorf("%s: path parameters %v in openapi.json, %v in the route", path, inPath, wantPath)
		}
		wantQuery := slices.Clone(rt.query)
		sort.Strings(inQuery)
		sort.Strings(wantQuery)
		if !slices.Equal(inQuery, wantQuery) {
			t.Errorf("%s: query parameters %v in openapi.json, %v in the route", path, inQuery, wantQuery)
		}
		if _, ok := op.Responses.Map()["default"]; !ok {
			t.Errorf("%s: no default (problem) response", path)
		}
	}
	for p := range served {
		if !slices.Contains(specPaths, p) {
			t.Errorf("the server routes %s, which openapi.json does not document", p)
		}
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi.json is OpenAPI %s, want 3.1.0", doc.OpenAPI)
	}
}

// TestDocsPageIsSelfContained checks that /docs and /openapi.json are the
// embedded files and that the page loads nothing from another origin.
func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{}, &fakeUsers{}, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{"/openapi.json": openAPISpec, "/docs": docsPage} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("GET %s: %d, %d bytes, want 200 and the embedded %d bytes", path, rec.Code, rec.Body.Len(), len(want))
		}
	}
	page := string(docsPage)
	for _, bad := range []string{"http://", "https://", `src="//`, `href="//`, "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("docs.html holds %q: it must load nothing from elsewhere", bad)
		}
	}
	if !strings.Contains(page, `fetch("/openapi.json")`) {
		t.Error("docs.html does not render /openapi.json")
	}
}
