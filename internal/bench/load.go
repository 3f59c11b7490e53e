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

// load runs conns workers calling do for d, and measures each call.
func load(ctx context.Context, conns int, d time.Duration, do func(w int, r *rand.Rand) error) (LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lats := make([][]float64, conns)
	errs := make([]int, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for ctx.Err() == nil {
				t := time.Now()
				if err := do(w, r); err != nil {
					if ctx.Err() == nil {
						errs[w]++
					}
					continue
				}
				lats[w] = append(lats[w], float64(time.Since(t).Microseconds())/1000)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []float64
	res := LoadResult{}
	for w := range lats {
		all = append(all, lats[w]...)
		res.Errors += errs[w]
	}
	if len(all) == 0 {
		return res, fmt.Errorf("no request succeeded (%d errors)", res.Errors)
	}
	sort.Float64s(all)
	res.RPS = float64(len(all)) / elapsed
	res.P50, res.P99 = percentile(all, 50), percentile(all, 99)
	return res, nil
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

// loadNetHTTP is loadHTTP with net/http's client as the load generator
// instead of rawConn: what a Go client of the API pays, on the same cores.
func loadNetHTTP(ctx context.Context, base, token string, path func(*rand.Rand) string, conns int, d time.Duration) (LoadResult, error) {
	c := httpClient(conns)
	defer c.CloseIdleConnections()
	return load(ctx, conns, d, func(_ int, r *rand.Rand) error {
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
	})
}

// loadPgx runs the API's query through the store directly, with the same
// pool size as the API's (store.DefaultMaxConns), at the same concurrency.
func (b *bencher) loadPgx(ctx context.Context, schema string, name func(int) string) (LoadResult, error) {
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: schema}, b.quiet)
	if err != nil {
		return LoadResult{}, err
	}
	defer st.Close()
	return load(ctx, b.cfg.APIConns, b.cfg.APIDuration, func(_ int, r *rand.Rand) error {
		_, err := st.UsersByName(ctx, name(r.IntN(1<<30)), 1000)
		return err
	})
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
