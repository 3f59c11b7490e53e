package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPISpec is the API's OpenAPI 3.1 description, committed as
// openapi.json. TestSpecMatchesRoutes holds it to the routes the server
// registers; the API tests validate every response against it.
//
//go:embed openapi.json
var openAPISpec []byte

// docsPage renders openAPISpec in a browser. It loads nothing from other
// origins: its script and style are inline, and it fetches /openapi.json.
//
//go:embed docs.html
var docsPage []byte

// openAPI serves GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	if allowGet(w, r, s) {
		writeStatic(w, "application/json", openAPISpec)
	}
}

// docs serves GET /docs.
func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	if allowGet(w, r, s) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		writeStatic(w, "text/html; charset=utf-8", docsPage)
	}
}

func writeStatic(w http.ResponseWriter, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
