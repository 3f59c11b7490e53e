package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one pattern of the API's mux, with what openapi.json must say
// about it: TestSpecMatchesRoutes holds the two to each other, so a route
// added, removed or given a new query parameter without the spec (or the
// other way round) fails the build's tests.
type route struct {
	pattern string       // http.ServeMux pattern, without a method; also the spec's path
	method  string       // the one method the spec documents; HEAD is accepted wherever GET is
	query   []string     // the query parameters the handler reads, as the spec names them
	handler http.Handler // nil: not served by this Server (see routes)
	data    bool         // a data route, not served by ServeProbesOnly; guarded by --api-token-file
	metrics bool         // in the metrics group: guarded by --metrics-token-file (see authGroup)
}

// routes returns every route the API documents. A route whose handler is
// nil is documented but not served by this Server (/metrics without a
// gatherer); Handler registers the others.
func (s *Server) routes() []route {
	var metrics http.Handler
	if s.gatherer != nil {
		metrics = promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	}
	return []route{
		{pattern: "/users/{name}", method: http.MethodGet, handler: http.HandlerFunc(s.getUsers), data: true},
		{pattern: "/users", method: http.MethodGet, query: []string{"name", "organization", "limit", "cursor"}, handler: http.HandlerFunc(s.listUsers), data: true},
		{pattern: "/users/by-id/{id}", method: http.MethodGet, handler: http.HandlerFunc(s.getUserByID), data: true},
		{pattern: "/users/by-id/{id}/history", method: http.MethodGet, query: []string{"limit", "cursor"}, handler: http.HandlerFunc(s.getUserHistory), data: true},
		{pattern: "/organizations/{name}", method: http.MethodGet, handler: http.HandlerFunc(s.getOrganization), data: true},
		{pattern: "/organizations/{name}/activity", method: http.MethodGet, query: []string{"from", "to", "limit", "cursor"}, handler: http.HandlerFunc(s.getActivity), data: true},
		{pattern: "/organizations", method: http.MethodGet, query: []string{"limit", "cursor"}, handler: http.HandlerFunc(s.listOrganizations), data: true},
		{pattern: "/", method: http.MethodGet, handler: http.HandlerFunc(s.statusPage), metrics: true},
		{pattern: "/openapi.json", method: http.MethodGet, handler: http.HandlerFunc(s.openAPI)},
		{pattern: "/docs", method: http.MethodGet, handler: http.HandlerFunc(s.docs)},
		{pattern: "/health", method: http.MethodGet, handler: http.HandlerFunc(s.health), metrics: true},
		{pattern: "/ready", method: http.MethodGet, handler: http.HandlerFunc(s.ready), metrics: true},
		{pattern: "/metrics", method: http.MethodGet, handler: metrics, metrics: true},
	}
}

// muxPattern is the pattern rt is registered under: its pattern, except
// that "/" (the status page) matches only "/" itself, not every path.
func (rt route) muxPattern() string {
	if rt.pattern == "/" {
		return "/{$}"
	}
	return rt.pattern
}
