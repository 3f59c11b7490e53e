// Package api serves the joined state over HTTP: GET /users/{name}, the
// browsing routes (GET /users?name=…|organization=…, /users/by-id/{id},
// its /history, /organizations, /organizations/{name}), /openapi.json and
// /docs, /health, /ready, /metrics and the status page at / (statuspage.go).
// openapi.json describes every route (routes.go lists them;
// TestSpecMatchesRoutes holds the two together).
// Errors are RFC 9457 problem details (application/problem+json), mapped
// from Go errors in one place (httpStatus): a database outage is a 503, a
// bug (an unknown error, a panic in a handler or in a lookup) is a logged
// 500.
//
// Some malformed requests never reach the handler: net/http answers them
// itself, in text/plain (a URI that does not parse, such as GET /users/%,
// is a 400; a request line or headers over MaxHeaderBytes, 64 KiB, such as
// a 100 KB path, is a 431). Run's listener rewrites those answers into
// problem documents on the wire (rawerrors.go; TestWhatNetHTTPAnswersItself).
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamjoin/streamjoin/internal/store"
)

// Config configures the HTTP server. Zero fields take the defaults.
type Config struct {
	// Addr to listen on. Default ":8080".
	Addr string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// the net/http server timeouts. Defaults 5s, 10s, 10s, 60s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests. Default 10s.
	ShutdownTimeout time.Duration
	// MaxNameBytes is the longest accepted {name}. Default 256.
	MaxNameBytes int
	// MaxResults bounds the users returned for one name. Default 1000.
	MaxResults int
	// MaxInFlight bounds concurrent requests; past it the API answers 503
	// at once. Default 1024.
	MaxInFlight int
	// LookupSlots bounds the user queries running at once. Lookups that
	// arrive while every slot is busy are merged into the next query (see
	// coalescer). Default 2: on 2 cores, fewer and larger queries
	// measured faster than 4 or 8 (BENCHMARKS.md).
	LookupSlots int
	// LookupBatch is the most names one query looks up; 1 makes every
	// query look up one name. Default 64.
	LookupBatch int
	// LookupTimeout bounds how long a request waits for its lookup,
	// queueing included; past it the API answers 503. app sets it to the
	// store's query timeout (--query-timeout). Default 2s.
	LookupTimeout time.Duration
	// MaxBatchNames is the most names one GET /users?name=… may ask for;
	// more is a 400. Default 100.
	MaxBatchNames int
	// APITokenFile, if set, is a token file (see TokenSet) whose bearer
	// tokens the data routes require; empty: they are open.
	APITokenFile string
	// MetricsTokenFile, if set, is a token file whose bearer tokens the
	// metrics group (/health, /ready, /metrics) requires; empty: open.
	MetricsTokenFile string
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	def(&c.ReadHeaderTimeout, 5*time.Second)
	def(&c.ReadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.LookupTimeout, 2*time.Second)
	if c.MaxNameBytes == 0 {
		c.MaxNameBytes = 256
	}
	if c.MaxResults == 0 {
		c.MaxResults = 1000
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.LookupSlots == 0 {
		c.LookupSlots = 2
	}
	if c.LookupBatch == 0 {
		c.LookupBatch = 64
	}
	if c.MaxBatchNames == 0 {
		c.MaxBatchNames = 100
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("http-addr %q: %w", c.Addr, err)
	}
	for name, d := range map[string]time.Duration{
		"http-read-header-timeout": c.ReadHeaderTimeout, "http-read-timeout": c.ReadTimeout,
		"http-write-timeout": c.WriteTimeout, "http-idle-timeout": c.IdleTimeout, "http-shutdown-timeout": c.ShutdownTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s %s: must be positive", name, d)
		}
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"max-name-bytes", c.MaxNameBytes}, {"max-results", c.MaxResults}, {"max-in-flight", c.MaxInFlight},
		{"api-lookup-slots", c.LookupSlots}, {"api-lookup-batch", c.LookupBatch},
		{"max-batch-names", c.MaxBatchNames},
	} {
		if v.n < 1 {
			return fmt.Errorf("%s %d: must be at least 1", v.name, v.n)
		}
	}
	if c.LookupTimeout < 0 {
		return fmt.Errorf("lookup timeout %s: must not be negative", c.LookupTimeout)
	}
	return c.validateTokenFiles()
}

// Users is what the API reads. *store.Store implements it.
type Users interface {
	// UsersByNames returns, keyed by name, up to limit live users for each
	// of names (which hold no repeats).
	UsersByNames(ctx context.Context, names []string, limit int) (map[string][]store.Profile, error)
	Ping(ctx context.Context) error
}

// Server is the HTTP API. Its handler is safe for concurrent use.
type Server struct {
	cfg      Config
	users    Users
	joined   func() bool
	gatherer prometheus.Gatherer
	log      *slog.Logger
	inFlight chan struct{}
	lookups  *coalescer
	browse   Browser        // nil: the browsing routes answer 501
	activity ActivityReader // nil: GET /organizations/{name}/activity answers 501
	ln       net.Listener
	stopping chan struct{}
	started  <-chan struct{} // closed once the data can be read; nil: from the start
	probes   bool            // serve /health, /ready and /metrics only
	readyLog readyLog
	// httpMetrics counts requests (httpmetrics.go); nil: not registered.
	httpMetrics *httpMetrics

	apiTokens     *TokenSet // nil: the data routes are open
	metricsTokens *TokenSet // nil: the metrics group is open

	status statusState // GET /, the status page (statuspage.go)
}

// New validates cfg and returns a Server. joined reports whether the consumer
// is in its group (nil: always). gatherer serves /metrics (nil: no /metrics).
func New(cfg Config, users Users, joined func() bool, gatherer prometheus.Gatherer, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if joined == nil {
		joined = func() bool { return true }
	}
	browse, _ := users.(Browser)
	activity, _ := users.(ActivityReader)
	s := &Server{
		cfg: cfg, users: users, browse: browse, activity: activity, joined: joined, gatherer: gatherer, log: logger,
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		lookups:  newCoalescer(users, cfg.MaxResults, cfg.LookupSlots, cfg.LookupBatch, cfg.MaxInFlight, cfg.LookupTimeout),
		stopping: make(chan struct{}),
	}
	if err := s.loadTokens(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the API's routes, each behind the bearer-token check of
// its group (auth.go): with Config.APITokenFile the data routes, with
// Config.MetricsTokenFile the metrics group, answer 401 without a token of
// that file.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		if rt.handler != nil && !(rt.data && s.probes) {
			mux.Handle(rt.muxPattern(), s.requireToken(s.tokens(rt.group()), rt.handler))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &problem{status: http.StatusNotFound, detail: "no such resource: " + r.URL.Path})
	})
	return s.instrument(s.recoverPanics(s.limit(mux)))
}

// Listen binds cfg.Addr. Call it before Run to fail fast on a taken port and
// to learn the address when Addr has port 0.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx is canceled, then drains in-flight requests for up to
// ShutdownTimeout. It calls Listen if the caller has not.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(problemListener{s.ln}) }()
	s.log.Info("http api listening", "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down http: %w", err)
	}
	s.log.Info("http api stopped")
	return nil
}

// ServeProbesOnly makes the server serve /health, /ready and /metrics only
// (the ingest role): any other path, GET /users/… included, is a 404
// problem. Call it before Handler or Run.
func (s *Server) ServeProbesOnly() { s.probes = true }

// StartAfter makes GET /users/… and /ready answer 503 ("migrating") until
// ready is closed, for a process that serves HTTP before its schema is
// migrated; /health answers from the start. Call it before Run.
func (s *Server) StartAfter(ready <-chan struct{}) { s.started = ready }

// starting reports whether the data can't be read yet (see StartAfter).
func (s *Server) starting() bool {
	if s.started == nil {
		return false
	}
	select {
	case <-s.started:
		return false
	default:
		return true
	}
}

// errStarting is the answer to reads before StartAfter's channel closes.
var errStarting = &problem{status: http.StatusServiceUnavailable, detail: reasonMigrating}

// Stopping makes /ready answer 503 from now on: the process is shutting down.
func (s *Server) Stopping() {
	select {
	case <-s.stopping:
	default:
		close(s.stopping)
	}
}

// isStopping reports whether Stopping was called.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// maxHeaderBytes bounds a request's line and headers; past it net/http
// answers 431 itself.
const maxHeaderBytes = 64 << 10

// limit answers 503 at once when MaxInFlight requests are already in.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
			next.ServeHTTP(w, r)
		default:
			s.fail(w, r, &problem{status: http.StatusServiceUnavailable, detail: "too many requests in flight"})
		}
	})
}

func (s *Server) getUsers(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r, s) {
		return
	}
	name := r.PathValue("name")
	switch {
	case name == "":
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "name must not be empty"})
		return
	case len(name) > s.cfg.MaxNameBytes:
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: fmt.Sprintf("name is %d bytes, over the limit of %d", len(name), s.cfg.MaxNameBytes)})
		return
	case !utf8.ValidString(name):
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "name is not valid UTF-8"})
		return
	case containsNUL(name):
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "name must not contain NUL"})
		return
	case s.starting():
		s.fail(w, r, errStarting)
		return
	}
	users, err := s.lookups.get(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeUsers(w, r, users)
}

func allowGet(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	s.fail(w, r, &problem{status: http.StatusMethodNotAllowed, detail: r.Method + " is not allowed here"})
	return false
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
