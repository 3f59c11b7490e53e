package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/workload"
)

const (
	// batchNames is how many names each GET /users?name=… of the batch
	// load test asks for (the API's --max-batch-names default).
	batchNames = 100
	// pageOrg is the organization whose users the pagination test pages
	// through, pageSize users a page, up to page pageDepth. It has one
	// page more than that, so that page pageDepth is a page in the middle,
	// not the last one: the last page of an organization costs a walk of
	// the rest of users_pkey (see users_by_org.sql), whatever its depth.
	pageOrg   = "bench-page-org"
	pageSize  = 100
	pageDepth = 1000
	// pageConns is the pagination test's concurrency: low, so that its
	// latency is a page's cost rather than a queue.
	pageConns = 4
	// interleaveSlice is how long each of the tests compared with each
	// other runs before the next one's turn (interleave).
	interleaveSlice = time.Second
)

// writeTokenFile writes a fresh random bearer token to a file in dir, for
// the API's --api-token-file, and returns the token and the path.
func writeTokenFile(dir string) (token, path string, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(raw[:])
	path = filepath.Join(dir, "api-tokens")
	if err := os.WriteFile(path, []byte("# streamjoin bench\n"+token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("writing the API token file: %w", err)
	}
	return token, path, nil
}

// apiLoads runs the API's load tests against the process serving schema at
// base (with the bench's token and its HTTP metrics on), each beside what
// it is compared with, interleaved: GET /users/{name}, the same query
// through pgx directly, GET /users/{name} through net/http's client, and
// GET /users?name=…×100; then a constant-JSON handler; then page 1 beside
// page 1,000 of an organization's users (which it first writes to schema).
func (b *bencher) apiLoads(ctx context.Context, base, schema string, r *RunResult) error {
	users := b.cfg.Workload.Users
	single := func(rnd *mrand.Rand) string {
		return "/users/" + url.PathEscape(workload.Username(rnd.IntN(users)))
	}
	batch := func(rnd *mrand.Rand) string {
		var q strings.Builder
		q.WriteString("/users?")
		for i := range batchNames {
			if i > 0 {
				q.WriteByte('&')
			}
			q.WriteString("name=" + url.QueryEscape(workload.Username(rnd.IntN(users))))
		}
		return q.String()
	}
	b.progress(fmt.Sprintf("  API load, interleaved with: the same query through pgx directly, the API through net/http's client, and %d names a request", batchNames))
	api, doneAPI, err := httpLoad(base, b.token, single, b.cfg.APIConns)
	if err != nil {
		return err
	}
	defer doneAPI()
	pgx, donePgx, err := b.pgxLoad(ctx, schema, func(i int) string { return workload.Username(i % users) })
	if err != nil {
		return err
	}
	defer donePgx()
	netHTTP, doneNetHTTP := netHTTPLoad(base, b.token, single, b.cfg.APIConns)
	defer doneNetHTTP()
	batched, doneBatched, err := httpLoad(base, b.token, batch, b.cfg.APIConns)
	if err != nil {
		return err
	}
	defer doneBatched()
	res, err := interleave(ctx, b.cfg.APIConns, b.cfg.APIDuration, interleaveSlice, api, pgx, netHTTP, batched)
	if err != nil {
		return fmt.Errorf("API beside pgx: %w", err)
	}
	r.API, r.DirectPgx, r.APINetHTTP, r.APIBatch = res[0], res[1], res[2], res[3]
	if err := checkAuthAndMetrics(ctx, base); err != nil {
		return err
	}
	b.progress("  a constant-JSON handler")
	if r.ConstJSON, err = b.loadConst(ctx); err != nil {
		return fmt.Errorf("constant JSON: %w", err)
	}
	return b.pages(ctx, base, schema, r)
}

// pages writes an organization of pageSize×(pageDepth+1) users to schema,
// walks its pages through the API to learn page pageDepth's cursor, then
// loads page 1 and page pageDepth, interleaved, for half of APIDuration
// each.
func (b *bencher) pages(ctx context.Context, base, schema string, r *RunResult) error {
	b.progress(fmt.Sprintf("  pagination: page 1 against page %d of %d users a page", pageDepth, pageSize))
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: schema, MaxConns: 2}, b.quiet)
	if err != nil {
		return err
	}
	t0 := b.cfg.Workload.Start
	str := func(s string) *string { return &s }
	n := pageSize * (pageDepth + 1)
	for lo := 0; lo < n; lo += 10_000 {
		bt := &store.Batch{}
		for i := lo; i < min(n, lo+10_000); i++ {
			bt.Users = append(bt.Users, event.User{ID: fmt.Sprintf("page-%07d", i), Type: event.UserCreated, Username: str(fmt.Sprint("page", i)), OrganizationName: str(pageOrg), ReceivedAt: t0, LogTime: t0, Pos: event.Position{Offset: int64(i)}})
		}
		if err := st.WriteState(ctx, bt); err != nil {
			st.Close()
			return fmt.Errorf("loading the organization's users: %w", err)
		}
	}
	st.Close()
	first := "/users?organization=" + url.QueryEscape(pageOrg) + "&limit=" + strconv.Itoa(pageSize)
	c := httpClient(1)
	defer c.CloseIdleConnections()
	deep := first
	for page := 1; page < pageDepth; page++ {
		cursor, err := nextCursor(ctx, c, b.token, base+deep)
		if err != nil {
			return fmt.Errorf("walking to page %d: page %d: %w", pageDepth, page, err)
		}
		deep = first + "&cursor=" + url.QueryEscape(cursor)
	}
	firstDo, doneFirst, err := httpLoad(base, b.token, func(*mrand.Rand) string { return first }, pageConns)
	if err != nil {
		return err
	}
	defer doneFirst()
	deepDo, doneDeep, err := httpLoad(base, b.token, func(*mrand.Rand) string { return deep }, pageConns)
	if err != nil {
		return err
	}
	defer doneDeep()
	res, err := interleave(ctx, pageConns, max(b.cfg.APIDuration/2, time.Second), interleaveSlice, firstDo, deepDo)
	if err != nil {
		return fmt.Errorf("page 1 beside page %d: %w", pageDepth, err)
	}
	r.PageFirst, r.PageDeep = res[0], res[1]
	return nil
}

// nextCursor GETs a page and returns its next_cursor, which must be set.
func nextCursor(ctx context.Context, c *http.Client, token, u string) (string, error) {
	req, err := authedGet(ctx, token, u)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	// The cursor is base64url: no escapes to undo.
	_, rest, ok := strings.Cut(string(body), `"next_cursor":"`)
	cursor, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || cursor == "" {
		return "", fmt.Errorf("no next_cursor in the page")
	}
	return cursor, nil
}

// checkAuthAndMetrics makes sure the load just measured went through the
// bearer-token check and the HTTP metrics: a request without the token
// must be refused, and /metrics must count GET /users/{name}'s 200s.
func checkAuthAndMetrics(ctx context.Context, base string) error {
	c := httpClient(1)
	defer c.CloseIdleConnections()
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	code, _, err := get("/users/" + workload.Username(0))
	if err != nil {
		return err
	}
	if code != http.StatusUnauthorized {
		return fmt.Errorf("GET /users/{name} without a token answered %d, not 401: the API was not measured behind its token", code)
	}
	code, body, err := get("/metrics")
	if err != nil {
		return err
	}
	const series = `streamjoin_http_requests_total{method="GET",route="/users/{name}",status="200"}`
	if code != http.StatusOK || !strings.Contains(body, series) {
		return fmt.Errorf("/metrics (status %d) does not count the load's requests (%s): the API was not measured with its HTTP metrics", code, series)
	}
	return nil
}

// authedGet is a GET of u carrying the bench's bearer token.
func authedGet(ctx context.Context, token, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// apiOnly is `bench --only api`: it writes the dataset to a fresh schema
// through the store path (no Kafka), serves it with `streamjoin run --role
// api` (the bench's token file, HTTP metrics on, as any run), and runs
// apiLoads against it.
func (b *bencher) apiOnly(ctx context.Context, run int) (RunResult, error) {
	var r RunResult
	schema := fmt.Sprintf("bench_api_%d", run)
	b.progress(fmt.Sprintf("run %d/%d: writing the dataset through the store path", run, b.cfg.Runs))
	st, err := b.freshSchema(ctx, schema, b.cfg.Writers+1)
	if err != nil {
		return r, err
	}
	defer b.dropSchema(ctx, schema)
	err = b.writeItems(ctx, st)
	st.Close()
	if err != nil {
		return r, err
	}
	p, err := b.startAPI(schema)
	if err != nil {
		return r, err
	}
	defer p.stop()
	if err := p.waitReady(ctx, time.Minute); err != nil {
		return r, err
	}
	b.progress(fmt.Sprintf("run %d/%d: API load tests", run, b.cfg.Runs))
	if err := b.apiLoads(ctx, p.base, schema, &r); err != nil {
		return r, err
	}
	return r, nil
}
