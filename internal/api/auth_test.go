package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/prometheus/client_golang/prometheus"
)

// CheckAgainstSpec cannot decode an HTML body (GET /docs) without this:
// the page is checked for its status and headers, its body as opaque text.
// In init, since kin-openapi's registry is not safe to change while tests
// run.
func init() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) }

const (
	apiToken     = "api-token-0123456789abcdef"
	apiToken2    = "second-api-token-fedcba987"
	metricsToken = "metrics-token-0123456789ab"
	wrongToken   = "wrong-token-0123456789abcd"
)

// writeTokens writes a token file holding content and returns its path.
func writeTokens(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sha256Line is a token file line holding token's digest.
func sha256Line(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// openPaths are the routes no token file ever guards. Every other route is
// in the data group (its path starts with /users or /organizations) or in
// the metrics group; a route added without a group fails
// TestEveryRouteRequiresItsToken until it is listed here.
var openPaths = map[string]bool{"/openapi.json": true, "/docs": true}

// wantGroup is the group a route must be in, judged from its path alone
// (not from the route's own fields, which are what is under test).
func wantGroup(pattern string) authGroup {
	switch {
	case openPaths[pattern]:
		return authOpen
	case strings.HasPrefix(pattern, "/users"), strings.HasPrefix(pattern, "/organizations"):
		return authData
	}
	return authMetrics
}

// concretePath fills a route pattern's wildcards.
func concretePath(pattern string) string {
	return strings.NewReplacer("{name}", "Snake", "{id}", "a").Replace(pattern)
}

// authServer is a server over fake users, with both token files, logging
// into logs.
func authServer(t testing.TB, apiFile, metricsFile string, logs *bytes.Buffer) *Server {
	t.Helper()
	log := discard()
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(Config{APITokenFile: apiFile, MetricsTokenFile: metricsFile}, &fakeUsers{}, nil, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// authAnswer is a response as send returns it.
type authAnswer struct {
	Code   int
	header http.Header
	body   []byte
}

func (a authAnswer) Header() http.Header { return a.header }

// serve serves srv's handler over HTTP until t ends.
func serve(t testing.TB, srv *Server) string {
	t.Helper()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// send sends one request with an Authorization header (none if empty),
// checks the answer against openapi.json and returns it.
func send(t testing.TB, base, method, path, authorization string) authAnswer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	CheckAgainstSpec(t, req, resp.StatusCode, resp.Header, body)
	return authAnswer{resp.StatusCode, resp.Header, body}
}

// TestEveryRouteRequiresItsToken sends every route (s.routes(), so a new
// route is covered without a change here) no token, a wrong one, the other
// group's and its own, for GET and HEAD. A guarded route answers 401 with
// WWW-Authenticate: Bearer to all but its own; an open one never does.
func TestEveryRouteRequiresItsToken(t *testing.T) {
	t.Parallel()
	srv := authServer(t, writeTokens(t, "# data clients\n"+apiToken+"\n\n"+sha256Line(apiToken2)+"\n"), writeTokens(t, metricsToken+"\n"), nil)
	base := serve(t, srv)
	own := map[authGroup][]string{authData: {apiToken, apiToken2}, authMetrics: {metricsToken}}
	other := map[authGroup]string{authData: metricsToken, authMetrics: apiToken, authOpen: wrongToken}
	routes := srv.routes()
	if len(routes) < 11 {
		t.Fatalf("%d routes: the list is not the server's", len(routes))
	}
	for _, rt := range routes {
		group := wantGroup(rt.pattern)
		if got := rt.group(); got != group {
			t.Errorf("%s: in group %d, want %d", rt.pattern, got, group)
		}
		path := concretePath(rt.pattern)
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			type attempt struct {
				name, authorization string
				refused             bool
				wwwAuth             string
			}
			attempts := []attempt{
				{"no token", "", group != authOpen, `Bearer realm="streamjoin"`},
				{"no credentials after the scheme", "Bearer ", group != authOpen, `Bearer realm="streamjoin"`},
				{"another scheme", "Basic " + apiToken, group != authOpen, `Bearer realm="streamjoin"`},
				{"wrong token", "Bearer " + wrongToken, group != authOpen, `Bearer realm="streamjoin", error="invalid_token"`},
				{"a prefix of a right token", "Bearer " + metricsToken[:10], group != authOpen, `Bearer realm="streamjoin", error="invalid_token"`},
				{"the other group's token", "Bearer " + other[group], group != authOpen, `Bearer realm="streamjoin", error="invalid_token"`},
			}
			for _, tok := range own[group] {
				attempts = append(attempts, attempt{name: "its own token", authorization: "Bearer " + tok},
					attempt{name: "its own token, scheme in lower case", authorization: "bearer " + tok})
			}
			for _, a := range attempts {
				rec := send(t, base, method, path, a.authorization)
				switch {
				case a.refused && rec.Code != http.StatusUnauthorized:
					t.Errorf("%s %s, %s: %d, want 401", method, path, a.name, rec.Code)
				case a.refused && rec.Header().Get("WWW-Authenticate") != a.wwwAuth:
					t.Errorf("%s %s, %s: WWW-Authenticate %q, want %q", method, path, a.name, rec.Header().Get("WWW-Authenticate"), a.wwwAuth)
				case !a.refused && rec.Code == http.StatusUnauthorized:
					t.Errorf("%s %s, %s: 401, want the route's answer", method, path, a.name)
				}
			}
		}
	}
}

// TestNoTokenFileLeavesRoutesOpen: without token files nothing answers 401.
func TestNoTokenFileLeavesRoutesOpen(t *testing.T) {
	t.Parallel()
	srv := authServer(t, "", "", nil)
	for _, rt := range srv.routes() {
		if rec := send(t, serve(t, srv), http.MethodGet, concretePath(rt.pattern), ""); rec.Code == http.StatusUnauthorized {
			t.Errorf("GET %s without token files: 401", rt.pattern)
		}
	}
}

// TestTokenFileFormat: tokens and sha256: lines count alike; comments,
// blank lines and surrounding whitespace (CRLF too) are ignored; bad lines
// and files without a token are errors that never quote the file.
func TestTokenFileFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		tokens  int
		allowed []string
		refused []string
		err     string // a substring of the error; "" for none
	}{
		{name: "plain and hashed", content: apiToken + "\n" + sha256Line(apiToken2) + "\n", tokens: 2, allowed: []string{apiToken, apiToken2}, refused: []string{wrongToken, sha256Line(apiToken2), ""}},
		{name: "upper-case hex", content: "sha256:" + strings.ToUpper(sha256Line(apiToken)[7:]), tokens: 1, allowed: []string{apiToken}},
		{name: "comments, blanks, CRLF, indentation", content: "# a comment " + wrongToken + "\r\n\r\n   " + apiToken + "  \r\n\t# " + apiToken2 + "\n", tokens: 1, allowed: []string{apiToken}, refused: []string{wrongToken, apiToken2, "# a comment " + wrongToken}},
		{name: "no final newline", content: apiToken, tokens: 1, allowed: []string{apiToken}},
		{name: "empty", content: "", err: "holds no token"},
		{name: "comments only", content: "# " + apiToken + "\n\n", err: "holds no token"},
		{name: "whitespace inside", content: "abc " + apiToken + "\n", err: "line 1: a token holds no whitespace"},
		{name: "short hash", content: "# x\nsha256:abcd\n", err: "line 2: sha256: must be followed by 64 hex digits"},
		{name: "not hex", content: "sha256:" + strings.Repeat("zz", 32) + "\n", err: "line 1: sha256: must be followed by 64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, err := LoadTokens(writeTokens(t, tt.content))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadTokens: %v, want an error with %q", err, tt.err)
				}
				for _, secret := range []string{apiToken, "abcd", "zzzz"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error %q quotes the file (%q)", err, secret)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ts.Len() != tt.tokens {
				t.Errorf("%d tokens, want %d", ts.Len(), tt.tokens)
			}
			for _, tok := range tt.allowed {
				if !ts.Allows(tok) {
					t.Errorf("%q refused", tok)
				}
			}
			for _, tok := range tt.refused {
				if ts.Allows(tok) {
					t.Errorf("%q allowed", tok)
				}
			}
		})
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}

// TestBadTokenFileFailsNew: a bad file fails New (and Validate) naming
// the setting.
func TestBadTokenFileFailsNew(t *testing.T) {
	t.Parallel()
	good, empty, missing := writeTokens(t, apiToken), writeTokens(t, "# none yet\n"), filepath.Join(t.TempDir(), "missing")
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{APITokenFile: missing}, "api-token-file: open " + missing},
		{Config{APITokenFile: empty}, "api-token-file: " + empty + ": the file holds no token"},
		{Config{APITokenFile: good, MetricsTokenFile: missing}, "metrics-token-file: open " + missing},
		{Config{MetricsTokenFile: empty}, "metrics-token-file: " + empty + ": the file holds no token"},
	} {
		if err := tt.cfg.WithDefaults().Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q…", tt.cfg, err, tt.want)
		}
		if _, err := New(tt.cfg, &fakeUsers{}, nil, nil, discard()); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q…", tt.cfg, err, tt.want)
		}
	}
}

// TestReloadTokens: a reload that reads well replaces the tokens (the old
// one is refused, the new one accepted) and logs their count; one that
// fails (an empty file, a missing one) keeps the tokens in force and logs
// one error. No log line and no answer holds a token, the wrong one
// included.
func TestReloadTokens(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	apiFile, metricsFile := writeTokens(t, apiToken+"\n"), writeTokens(t, metricsToken+"\n")
	srv := authServer(t, apiFile, metricsFile, &logs)
	base := serve(t, srv)
	var answers bytes.Buffer
	status := func(path, token string) int {
		t.Helper()
		a := send(t, base, http.MethodGet, path, "Bearer "+token)
		_ = a.header.Write(&answers)
		answers.Write(a.body)
		return a.Code
	}
	rewrite := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if status("/users/Snake", apiToken) == http.StatusUnauthorized || status("/users/Snake", apiToken2) != http.StatusUnauthorized {
		t.Fatal("before the reload: want the first token accepted, the second refused")
	}

	rewrite(apiFile, "# rotated\n"+sha256Line(apiToken2)+"\n"+wrongToken+"-other\n")
	if err := srv.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if got := status("/users/Snake", apiToken); got != http.StatusUnauthorized {
		t.Errorf("the old token after the reload: %d, want 401", got)
	}
	if got := status("/users/Snake", apiToken2); got == http.StatusUnauthorized {
		t.Error("the new token after the reload: 401")
	}
	if got := status("/health", metricsToken); got != http.StatusOK {
		t.Errorf("the metrics token, its file unchanged: %d, want 200", got)
	}
	if !strings.Contains(logs.String(), "setting=api-token-file path="+apiFile+" tokens=2") {
		t.Errorf("the reload's log does not give the count of tokens:\n%s", logs.String())
	}

	logs.Reset()
	rewrite(apiFile, "# emptied by mistake\n")
	if err := os.Remove(metricsFile); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTokens(); err == nil {
		t.Fatal("ReloadTokens of an empty and a missing file: nil error")
	}
	if got := status("/users/Snake", apiToken2); got == http.StatusUnauthorized {
		t.Error("after a failed reload: the token in force is refused")
	}
	if got := status("/health", metricsToken); got != http.StatusOK {
		t.Errorf("after a failed reload of the metrics file: %d, want 200", got)
	}
	for _, setting := range []string{"api-token-file", "metrics-token-file"} {
		if n := strings.Count(logs.String(), "level=ERROR msg=\"token file not reloaded; the previous tokens stay in force\" setting="+setting); n != 1 {
			t.Errorf("%d error lines for %s's failed reload, want 1:\n%s", n, setting, logs.String())
		}
	}

	status("/users/Snake", wrongToken)
	status("/metrics", apiToken2)
	for _, secret := range []string{apiToken, apiToken2, metricsToken, wrongToken} {
		if strings.Contains(logs.String(), secret) || strings.Contains(answers.String(), secret) {
			t.Errorf("a token (%.6s…) is in the logs or an answer", secret)
		}
	}
	if answers.Len() == 0 || !strings.Contains(answers.String(), "Www-Authenticate") {
		t.Fatal("no answers recorded: the leak check looked at nothing")
	}
}

// TestTokenNotLoggedOnServerError: a request that fails with a logged 500
// or 503 logs its method and path, never its Authorization header.
func TestTokenNotLoggedOnServerError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	srv := authServer(t, writeTokens(t, apiToken), "", &logs)
	srv.browse = nil // the browsing routes answer 501 without a Browser
	srv.StartAfter(make(chan struct{}))
	base := serve(t, srv)
	for _, rt := range srv.routes() {
		send(t, base, http.MethodGet, concretePath(rt.pattern)+"?name=x", "Bearer "+apiToken)
		send(t, base, http.MethodGet, concretePath(rt.pattern), "Bearer "+wrongToken)
	}
	if strings.Contains(logs.String(), apiToken) || strings.Contains(logs.String(), wrongToken) {
		t.Errorf("a token is in the logs:\n%s", logs.String())
	}
}

// BenchmarkRequireToken measures what the auth middleware adds to a
// request: parsing the header, one SHA-256 and the constant-time
// comparison with each of the file's tokens (here 8).
func BenchmarkRequireToken(b *testing.B) {
	var content strings.Builder
	for i := range 7 {
		content.WriteString(apiToken + string(rune('a'+i)) + "\n")
	}
	content.WriteString(apiToken + "\n")
	ts, err := LoadTokens(writeTokens(b, content.String()))
	if err != nil {
		b.Fatal(err)
	}
	srv := authServer(b, "", "", nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, bc := range []struct {
		name string
		h    http.Handler
		auth string
		want int
	}{
		{"open", srv.requireToken(nil, ok), "", http.StatusNoContent},
		{"valid", srv.requireToken(ts, ok), "Bearer " + apiToken, http.StatusNoContent},
		{"invalid", srv.requireToken(ts, ok), "Bearer " + wrongToken, http.StatusUnauthorized},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/users/Snake", nil)
			if bc.auth != "" {
				req.Header.Set("Authorization", bc.auth)
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				bc.h.ServeHTTP(rec, req)
				if rec.Code != bc.want {
					b.Fatalf("%d, want %d", rec.Code, bc.want)
				}
			}
		})
	}
}

// TestSpecDocumentsAuth holds openapi.json's security to the routes'
// groups: a guarded route's operation names its group's scheme and
// documents the 401; an open one does neither.
func TestSpecDocumentsAuth(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	srv := authServer(t, "", "", nil)
	scheme := map[authGroup]string{authData: "bearerAuth", authMetrics: "metricsBearerAuth"}
	for _, rt := range srv.routes() {
		item := doc.Paths.Find(rt.pattern)
		if item == nil || item.GetOperation(rt.method) == nil {
			continue // TestSpecMatchesRoutes reports it
		}
		op := item.GetOperation(rt.method)
		var schemes []string
		if op.Security != nil {
			for _, req := range *op.Security {
				for name := range req {
					schemes = append(schemes, name)
				}
			}
		}
		has401 := op.Responses.Value("401") != nil
		want := scheme[rt.group()]
		switch {
		case want == "" && (len(schemes) > 0 || has401):
			t.Errorf("%s is open, but openapi.json gives it security %v (401: %t)", rt.pattern, schemes, has401)
		case want != "" && (len(schemes) != 1 || schemes[0] != want || !has401):
			t.Errorf("%s: openapi.json gives it security %v and 401 %t, want %s and a 401", rt.pattern, schemes, has401, want)
		}
	}
}
