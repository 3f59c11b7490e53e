package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// LoadResult is one load test: requests per second and latency percentiles
// in milliseconds.
type LoadResult struct {
	RPS    float64 `json:"rps"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Errors int     `json:"errors"`
}

// loadFunc is one call of a load test, by worker w of the test, with the
// worker's own random source; ctx ends with the slice of the test it runs
// in.
type loadFunc func(ctx context.Context, w int, r *rand.Rand) error

// load runs conns workers calling do for d, and measures each call.
func load(ctx context.Context, conns int, d time.Duration, do loadFunc) (LoadResult, error) {
	res, err := interleave(ctx, conns, d, d, do)
	if err != nil {
		return LoadResult{}, err
	}
	return res[0], nil
}

// interleave runs the load tests in turn, a slice of at most slice each,
// until each has run for d, with conns workers, and measures each call.
// Tests compared with each other are interleaved so that what else runs
// on the machine, which changes from one second to the next, weighs on
// each alike.
func interleave(ctx context.Context, conns int, d, slice time.Duration, tests ...loadFunc) ([]LoadResult, error) {
	type acc struct {
		lats    []float64
		errs    int
		elapsed time.Duration
	}
	accs := make([]acc, len(tests))
	for round := 0; accs[0].elapsed < d; round++ {
		for i, do := range tests {
			lats, errs, elapsed := loadSlice(ctx, conns, min(slice, d-accs[i].elapsed), round, do)
			accs[i].lats = append(accs[i].lats, lats...)
			accs[i].errs += errs
			accs[i].elapsed += elapsed
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	out := make([]LoadResult, len(tests))
	for i, a := range accs {
		out[i].Errors = a.errs
		if len(a.lats) == 0 {
			return nil, fmt.Errorf("no request succeeded (%d errors)", a.errs)
		}
		sort.Float64s(a.lats)
		out[i].RPS = float64(len(a.lats)) / a.elapsed.Seconds()
		out[i].P50, out[i].P99 = percentile(a.lats, 50), percentile(a.lats, 99)
	}
	return out, nil
}

// loadSlice runs conns workers calling do for d, and returns the latency
// of each call that succeeded in milliseconds, the count of those that
// failed, and the time taken. round seeds the workers' random sources.
func loadSlice(ctx context.Context, conns int, d time.Duration, round int, do loadFunc) (lats []float64, errs int, elapsed time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	wlats := make([][]float64, conns)
	werrs := make([]int, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42+uint64(round)))
			for ctx.Err() == nil {
				t := time.Now()
				if err := do(ctx, w, r); err != nil {
					if ctx.Err() == nil {
						werrs[w]++
					}
					continue
				}
				wlats[w] = append(wlats[w], float64(time.Since(t).Microseconds())/1000)
			}
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	for w := range wlats {
		lats = append(lats, wlats[w]...)
		errs += werrs[w]
	}
	return lats, errs, elapsed
}

// percentile of sorted values (nearest rank); 0 when empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func httpClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
	}
}

// netHTTPLoad is httpLoad with net/http's client as the load generator
// instead of rawConn: what a Go client of the API pays, on the same cores.
// Call done when the test is over.
func netHTTPLoad(base, token string, path func(*rand.Rand) string, conns int) (do loadFunc, done func()) {
	c := httpClient(conns)
	return func(ctx context.Context, _ int, r *rand.Rand) error {
		req, err := authedGet(ctx, token, base+path(r))
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}, c.CloseIdleConnections
}

// pgxLoad runs the API's query through the store directly, with the same
// pool size as the API's (store.DefaultMaxConns): the same work as GET
// /users/{name} minus HTTP, one query per call. Queries run under ctx,
// not a slice's context, so that no query is canceled at a slice's end.
// Call done when the test is over.
func (b *bencher) pgxLoad(ctx context.Context, schema string, name func(int) string) (do loadFunc, done func(), err error) {
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: schema}, b.quiet)
	if err != nil {
		return nil, nil, err
	}
	return func(_ context.Context, _ int, r *rand.Rand) error {
		_, err := st.UsersByName(ctx, name(r.IntN(1<<30)), 1000)
		return err
	}, st.Close, nil
}

// loadConst measures a net/http server answering constant JSON: what the
// HTTP stack alone costs on this machine. Its client sends the same bearer
// header as the API's, which the handler ignores.
func (b *bencher) loadConst(ctx context.Context) (LoadResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return LoadResult{}, err
	}
	body := []byte(`[{"username":"user1","user_type":"Admin","organization_name":"org-1","organization_tier":"pro"}]`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return loadHTTP(ctx, "http://"+ln.Addr().String(), b.token, func(*rand.Rand) string { return "/users/x" }, b.cfg.APIConns, b.cfg.APIDuration)
}
