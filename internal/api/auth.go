package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// TokenSet is the set of bearer tokens of one token file (--api-token-file
// or --metrics-token-file). It keeps only the tokens' SHA-256 digests,
// never the tokens.
//
// The file holds one token per line, either the token itself or
// "sha256:" and the hex SHA-256 of the token; both kinds are kept as
// digests and compared alike. Blank lines and lines starting with '#' are
// ignored; surrounding whitespace is trimmed. A file with no token is an
// error.
//
// A TokenSet is safe for concurrent use: Allows reads the current digests
// through an atomic pointer, and Reload swaps in a new set whole, or keeps
// the old one if the file cannot be read.
type TokenSet struct {
	path    string
	digests atomic.Pointer[[][sha256.Size]byte]
}

// LoadTokens reads the token file at path. Its errors name the path and a
// bad line's number, never a line's content.
func LoadTokens(path string) (*TokenSet, error) {
	ts := &TokenSet{path: path}
	if _, err := ts.Reload(); err != nil {
		return nil, err
	}
	return ts, nil
}

// Path is the file the set is read from.
func (ts *TokenSet) Path() string { return ts.path }

// Reload reads the file again and, if it holds at least one token,
// replaces the set with it and returns how many tokens it holds. On an
// error (unreadable file, a bad line, no tokens) the set is left as it was.
func (ts *TokenSet) Reload() (int, error) {
	b, err := os.ReadFile(ts.path)
	if err != nil {
		return 0, err // a *PathError: it names the path
	}
	digests, err := parseTokens(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ts.path, err)
	}
	ts.digests.Store(&digests)
	return len(digests), nil
}

// Len is the number of tokens in the set.
func (ts *TokenSet) Len() int { return len(*ts.digests.Load()) }

// Allows reports whether token is in the set. It hashes token once and
// compares the digest with every digest of the set in constant time, so its
// duration depends on neither the token nor which entry (if any) matches.
func (ts *TokenSet) Allows(token string) bool {
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, d := range *ts.digests.Load() {
		match |= subtle.ConstantTimeCompare(sum[:], d[:])
	}
	return match == 1
}

const hashPrefix = "sha256:"

// parseTokens reads a token file's content; see TokenSet.
func parseTokens(b []byte) ([][sha256.Size]byte, error) {
	var out [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: a token holds no whitespace", n)
		}
		if hexSum, ok := strings.CutPrefix(line, hashPrefix); ok {
			var d [sha256.Size]byte
			if len(hexSum) != 2*sha256.Size {
				return nil, fmt.Errorf("line %d: %s must be followed by 64 hex digits", n, hashPrefix)
			}
			if _, err := hex.Decode(d[:], []byte(hexSum)); err != nil {
				return nil, fmt.Errorf("line %d: %s must be followed by 64 hex digits", n, hashPrefix)
			}
			out = append(out, d)
			continue
		}
		out = append(out, sha256.Sum256([]byte(line)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	if len(out) == 0 {
		return nil, errNoTokens
	}
	return out, nil
}

var errNoTokens = errors.New("the file holds no token")

// authGroup is which token file guards a route.
type authGroup int

const (
	authOpen    authGroup = iota // no token, ever: /openapi.json, /docs
	authData                     // --api-token-file: the data routes
	authMetrics                  // --metrics-token-file: /health, /ready, /metrics (and the status page)
)

// group is the token file that guards rt.
func (rt route) group() authGroup {
	switch {
	case rt.data:
		return authData
	case rt.metrics:
		return authMetrics
	}
	return authOpen
}

// tokens returns the set that guards group g; nil: the group is open.
func (s *Server) tokens(g authGroup) *TokenSet {
	switch g {
	case authData:
		return s.apiTokens
	case authMetrics:
		return s.metricsTokens
	}
	return nil
}

// requireToken answers 401, before next runs, a request that does not
// carry "Authorization: Bearer <token>" with a token of ts. A nil ts lets
// every request through. The token is never logged nor echoed.
func (s *Server) requireToken(ts *TokenSet, next http.Handler) http.Handler {
	if ts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamjoin"`)
			writeProblem(w, r, http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)")
		case !ts.Allows(token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamjoin", error="invalid_token"`)
			writeProblem(w, r, http.StatusUnauthorized, "the bearer token is not valid")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// bearerToken returns the token of an Authorization header's Bearer
// credentials (the scheme is case-insensitive, RFC 9110 §11.1); false if
// there is none.
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	token := strings.TrimSpace(h[len(scheme):])
	return token, token != ""
}

// validateTokenFiles reads each token file that is set, so that a missing,
// unreadable or empty one fails the start naming its setting.
func (c Config) validateTokenFiles() error {
	for _, f := range []struct{ flag, path string }{
		{"api-token-file", c.APITokenFile}, {"metrics-token-file", c.MetricsTokenFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := LoadTokens(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	return nil
}

// loadTokens reads the token files cfg names.
func (s *Server) loadTokens() error {
	var err error
	if s.cfg.APITokenFile != "" {
		if s.apiTokens, err = LoadTokens(s.cfg.APITokenFile); err != nil {
			return fmt.Errorf("api-token-file: %w", err)
		}
	}
	if s.cfg.MetricsTokenFile != "" {
		if s.metricsTokens, err = LoadTokens(s.cfg.MetricsTokenFile); err != nil {
			return fmt.Errorf("metrics-token-file: %w", err)
		}
	}
	return nil
}

// HasTokens reports whether a token file is set, i.e. whether
// ReloadTokens has anything to do.
func (s *Server) HasTokens() bool { return s.apiTokens != nil || s.metricsTokens != nil }

// ReloadTokens reads the token files again (the cli/app layer calls it on
// SIGHUP). A file that reads well replaces its tokens, and the count is
// logged at info; one that does not (unreadable, a bad line, no token)
// keeps the tokens it had, and the error is logged once, at error level.
// Neither log names a token. It returns the errors, joined. Safe for
// concurrent use with the handler and with itself.
func (s *Server) ReloadTokens() error {
	var errs []error
	for _, f := range []struct {
		flag string
		ts   *TokenSet
	}{{"api-token-file", s.apiTokens}, {"metrics-token-file", s.metricsTokens}} {
		if f.ts == nil {
			continue
		}
		n, err := f.ts.Reload()
		if err != nil {
			err = fmt.Errorf("%s: %w", f.flag, err)
			s.log.Error("token file not reloaded; the previous tokens stay in force", "setting", f.flag, "tokens", f.ts.Len(), "err", err)
			errs = append(errs, err)
			continue
		}
		s.log.Info("token file reloaded", "setting", f.flag, "path", f.ts.Path(), "tokens", n)
	}
	return errors.Join(errs...)
}
