package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

var t0 = time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)

// writer writes batches of events to a store, one transaction each, at
// consecutive offsets of partition 0 of topic "u".
type writer struct {
	st   *store.Store
	next *int64
	off  int64
}

func newWriter(t *testing.T, st *store.Store) *writer {
	t.Helper()
	if _, err := st.ClaimOffsets(context.Background(), []store.TopicPartition{{Topic: "u", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	return &writer{st: st}
}

// write stores users and orgs in one batch, giving the users the next
// offsets in order.
func (w *writer) write(t *testing.T, users []event.User, orgs ...event.Org) {
	t.Helper()
	for i := range users {
		users[i].Pos = event.Position{Offset: w.off}
		w.off++
	}
	to := w.off
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: users, Orgs: orgs,
		Offsets: []store.OffsetAdvance{{Topic: "u", Partition: 0, Generation: 1, From: w.next, To: to}}}
	if err := w.st.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	w.next = &to
}

func ev(id string, typ event.UserEventType, name, org string, at time.Time) event.User {
	u := event.User{ID: id, Type: typ, ReceivedAt: at, LogTime: at, UserType: sp("Admin")}
	if name != "" {
		u.Username = sp(name)
	}
	if org != "" {
		u.OrganizationName = sp(org)
	}
	return u
}

// countingStore is the real store, counting the API's UsersByNames
// queries (each is one SQL statement).
type countingStore struct {
	*store.Store
	byNames atomic.Int64
}

func (c *countingStore) UsersByNames(ctx context.Context, names []string, limit int) (map[string][]store.Profile, error) {
	c.byNames.Add(1)
	return c.Store.UsersByNames(ctx, names, limit)
}

// browseFixture is a store with:
//   - organization Acme (gold, key k-acme) with 25 live users a00…a24 and
//     two deleted users: a99 (deleted in a later batch: it keeps its name)
//     and d1 (created and deleted in one batch: only the delete was
//     written, so it has no name); organizations Beta and Gamma;
//   - user h, whose history is: created at t0 (batch 1), updated at t0+2h
//     (batch 2), a late update at t0+1h (batch 3, superseded), plus in
//     batch 1 an update at t0-1h that its own batch's created beat;
//   - users Kim (two of them) and Lee.
type browseFixture struct {
	st     *countingStore
	w      *writer
	c      specClient
	server *api.Server
}

func setupBrowse(t *testing.T, cfg api.Config) *browseFixture {
	t.Helper()
	st := &countingStore{Store: testenv.Store(t)}
	w := newWriter(t, st.Store)
	var batch []event.User
	for i := range 25 {
		batch = append(batch, ev(fmt.Sprintf("a%02d", i), event.UserCreated, fmt.Sprintf("user%02d", i), "Acme", t0))
	}
	batch = append(batch, ev("a99", event.UserCreated, "gone", "Acme", t0), ev("d1", event.UserCreated, "d", "Acme", t0), ev("d1", event.UserDeleted, "", "", t0.Add(time.Hour)))
	batch = append(batch, ev("k1", event.UserCreated, "Kim", "Beta", t0), ev("k2", event.UserCreated, "Kim", "Beta", t0), ev("l1", event.UserCreated, "Lee", "", t0))
	batch = append(batch, ev("h", event.UserUpdated, "h-early", "Beta", t0.Add(-time.Hour)), ev("h", event.UserCreated, "h0", "Beta", t0))
	w.write(t, batch,
		event.Org{Name: "Acme", Key: sp("k-acme"), Tier: sp("gold"), CreatedAt: t0, LogTime: t0},
		event.Org{Name: "Beta", Tier: sp("silver"), CreatedAt: t0, LogTime: t0},
		event.Org{Name: "Gamma", CreatedAt: t0, LogTime: t0})
	w.write(t, []event.User{ev("h", event.UserUpdated, "h2", "Beta", t0.Add(2*time.Hour)), ev("a99", event.UserDeleted, "", "", t0.Add(time.Hour))})
	w.write(t, []event.User{ev("h", event.UserUpdated, "h1-late", "Beta", t0.Add(time.Hour))})
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := api.New(cfg, st, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &browseFixture{st: st, w: w, c: specClient{t: t, base: ts.URL}, server: srv}
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

func TestUsersByManyNames(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{MaxBatchNames: 5})
	for _, tt := range []struct {
		query  string
		status int
		want   map[string]int // users per name
	}{
		{"name=Kim&name=Lee&name=Nobody", 200, map[string]int{"Kim": 2, "Lee": 1, "Nobody": 0}},
		{"name=Kim&name=Kim", 200, map[string]int{"Kim": 2}},
		{"name=gone", 200, map[string]int{"gone": 0}},
		{"name=user01&name=user02&name=user03&name=user04&name=user05", 200, map[string]int{"user01": 1, "user02": 1, "user03": 1, "user04": 1, "user05": 1}},
		{"name=a&name=b&name=c&name=d&name=e&name=f", 400, nil},
		{"name=", 400, nil},
		{"name=" + strings.Repeat("x", 257), 400, nil},
		{"name=a%00b", 400, nil},
		{"name=Kim&organization=Acme", 400, nil},
		{"name=Kim&limit=2", 400, nil},
		{"", 400, nil},
		{"nothing=1", 400, nil},
	} {
		before := f.st.byNames.Load()
		code, _, body := f.c.get("/users?" + tt.query)
		if code != tt.status {
			t.Errorf("?%s: %d, want %d: %s", tt.query, code, tt.status, body)
			continue
		}
		queries := f.st.byNames.Load() - before
		if code != 200 {
			if queries != 0 {
				t.Errorf("?%s: refused, yet ran %d queries", tt.query, queries)
			}
			continue
		}
		if queries != 1 {
			t.Errorf("?%s: %d UsersByNames queries, want 1 for every name at once", tt.query, queries)
		}
		got := decode[struct {
			Users map[string][]store.Profile `json:"users"`
		}](t, body)
		if len(got.Users) != len(tt.want) {
			t.Errorf("?%s: names %v, want %v", tt.query, got.Users, tt.want)
		}
		for name, n := range tt.want {
			us, ok := got.Users[name]
			if !ok || len(us) != n {
				t.Errorf("?%s: %q has %d users (present %v), want %d", tt.query, name, len(us), ok, n)
			}
			for _, u := range us {
				if u.Username != name {
					t.Errorf("?%s: %q holds user %+v", tt.query, name, u)
				}
			}
		}
	}
}

// pageOfUsers is GET /users?organization=…'s answer.
type pageOfUsers struct {
	Users      []store.Profile `json:"users"`
	NextCursor *string         `json:"next_cursor"`
}

// walkOrgUsers pages through org's users with limit and returns their ids
// and the number of pages.
func walkOrgUsers(t *testing.T, c specClient, org string, limit int) ([]string, int) {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 1; ; pages++ {
		q := url.Values{"organization": {org}, "limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, _, body := c.get("/users?" + q.Encode())
		if code != 200 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		p := decode[pageOfUsers](t, body)
		if len(p.Users) > limit {
			t.Fatalf("page %d: %d users, over the limit %d", pages, len(p.Users), limit)
		}
		for _, u := range p.Users {
			ids = append(ids, u.ID)
		}
		if p.NextCursor == nil {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		cursor = *p.NextCursor
	}
}

func TestUsersByOrganizationPages(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("a%02d", i))
	}
	for _, tt := range []struct {
		org   string
		limit int
		want  []string
		pages int
	}{
		{"Acme", 10, want, 3},
		{"Acme", 25, want, 1}, // exactly one page: no next_cursor, no empty page after it
		{"Acme", 24, want, 2},
		{"Acme", 1000, want, 1},
		{"Beta", 10, []string{"h", "k1", "k2"}, 1},
		{"Nobody", 10, nil, 1},
	} {
		ids, pages := walkOrgUsers(t, f.c, tt.org, tt.limit)
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") || pages != tt.pages {
			t.Errorf("%s by %d: %v in %d pages, want %v in %d", tt.org, tt.limit, ids, pages, tt.want, tt.pages)
		}
	}
	for _, q := range []string{"organization=Acme&limit=0", "organization=Acme&limit=1001", "organization=Acme&limit=x",
		"organization=Acme&cursor=!!", "organization=Acme&cursor=" + url.QueryEscape("AQ"), "organization=Acme&organization=Beta", "organization="} {
		if code, _, body := f.c.get("/users?" + q); code != 400 {
			t.Errorf("?%s: %d, want 400: %s", q, code, body)
		}
	}
}

// TestOrganizationCursorIsStable takes a cursor, then changes what comes
// before it: the next page still starts right after the cursor's user.
func TestOrganizationCursorIsStable(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	_, _, body := f.c.get("/users?organization=Acme&limit=10")
	first := decode[pageOfUsers](t, body)
	if first.NextCursor == nil {
		t.Fatal("no next_cursor")
	}
	f.w.write(t, []event.User{ev("a000", event.UserCreated, "new", "Acme", t0), ev("a01", event.UserDeleted, "", "", t0.Add(time.Hour))})
	_, _, body = f.c.get("/users?organization=Acme&limit=3&cursor=" + url.QueryEscape(*first.NextCursor))
	next := decode[pageOfUsers](t, body)
	var ids []string
	for _, u := range next.Users {
		ids = append(ids, u.ID)
	}
	if strings.Join(ids, ",") != "a10,a11,a12" {
		t.Errorf("after inserting and deleting before the cursor: %v, want a10,a11,a12", ids)
	}
}

func TestUserByID(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	for _, tt := range []struct {
		id      string
		status  int
		name    string
		deleted bool
	}{
		{"a01", 200, "user01", false},
		{"a99", 200, "gone", true},
		{"d1", 200, "", true},
		{"h", 200, "h2", false},
		{"nobody", 404, "", false},
		{strings.Repeat("x", 257), 400, "", false},
		{"a%FF", 400, "", false},
	} {
		code, _, body := f.c.get("/users/by-id/" + tt.id)
		if code != tt.status {
			t.Errorf("%.20s: %d, want %d: %s", tt.id, code, tt.status, body)
			continue
		}
		if code != 200 {
			continue
		}
		u := decode[store.User](t, body)
		if deref(u.Username) != tt.name || u.Deleted != tt.deleted {
			t.Errorf("%s: %+v, want username %s deleted %v", tt.id, u, tt.name, tt.deleted)
		}
	}
}

type historyPage struct {
	ID     string `json:"id"`
	Events []struct {
		EventType  string    `json:"event_type"`
		ReceivedAt time.Time `json:"received_at"`
		Status     string    `json:"status"`
		Username   *string   `json:"username"`
		Source     struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"source"`
	} `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

func TestUserHistory(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	// Event-time order, and what each did: the early update lost to the
	// created of its own batch; the created was applied, then replaced by
	// the t0+2h update (current); the t0+1h update came late and lost.
	want := []string{"h-early superseded", "h0 applied", "h1-late superseded", "h2 current"}
	for _, limit := range []int{100, 4, 3, 1} {
		var got []string
		cursor, pages := "", 0
		for {
			pages++
			path := fmt.Sprintf("/users/by-id/h/history?limit=%d", limit)
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			code, _, body := f.c.get(path)
			if code != 200 {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			p := decode[historyPage](t, body)
			for _, e := range p.Events {
				got = append(got, *e.Username+" "+e.Status)
				if e.Source.Topic != "u" || e.Source.Partition != 0 {
					t.Errorf("source %+v, want topic u partition 0", e.Source)
				}
			}
			if p.NextCursor == nil || pages > 10 {
				break
			}
			cursor = *p.NextCursor
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("limit %d: %v, want %v", limit, got, want)
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// Offsets are the source coordinates: h's events were written at 31, 32
	// (batch 1), 33 (batch 2) and 35 (batch 3).
	_, _, body := f.c.get("/users/by-id/h/history")
	var offs []int64
	for _, e := range decode[historyPage](t, body).Events {
		offs = append(offs, e.Source.Offset)
	}
	if fmt.Sprint(offs) != "[31 32 35 33]" {
		t.Errorf("offsets %v, want [31 32 35 33]", offs)
	}
	for path, status := range map[string]int{
		"/users/by-id/nobody/history":                 404,
		"/users/by-id/h/history?limit=0":              400,
		"/users/by-id/h/history?cursor=AXU":           400, // a users-by-organization cursor
		"/users/by-id/h/history?cursor=" + "AWgAAAAA": 400, // too short
	} {
		if code, _, body := f.c.get(path); code != status {
			t.Errorf("%s: %d, want %d: %s", path, code, status, body)
		}
	}
}

func TestOrganizations(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	for _, tt := range []struct {
		name   string
		status int
		tier   string
		key    string
		live   int64
	}{
		{"Acme", 200, "gold", "k-acme", 25}, // a99 is deleted
		{"Beta", 200, "silver", "", 3},
		{"Gamma", 200, "", "", 0},
		{"Nobody", 404, "", "", 0},
		{strings.Repeat("x", 300), 400, "", "", 0},
	} {
		code, _, body := f.c.get("/organizations/" + tt.name)
		if code != tt.status {
			t.Errorf("%.20s: %d, want %d: %s", tt.name, code, tt.status, body)
			continue
		}
		if code != 200 {
			continue
		}
		o := decode[store.OrganizationInfo](t, body)
		if o.Name != tt.name || deref(o.Tier) != tt.tier || deref(o.Key) != tt.key || o.LiveUsers != tt.live || !o.CreatedAt.Equal(t0) {
			t.Errorf("%s: %+v, want tier %q key %q live %d created %s", tt.name, o, tt.tier, tt.key, tt.live, t0)
		}
	}
	var names []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := "/organizations?limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, _, body := f.c.get(path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		p := decode[struct {
			Organizations []store.Organization `json:"organizations"`
			NextCursor    *string              `json:"next_cursor"`
		}](t, body)
		for _, o := range p.Organizations {
			names = append(names, o.Name)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if strings.Join(names, ",") != "Acme,Beta,Gamma" {
		t.Errorf("organizations by 2: %v, want Acme,Beta,Gamma", names)
	}
	if code, _, body := f.c.get("/organizations?cursor=AXUx"); code != 400 {
		t.Errorf("a users cursor on /organizations: %d, want 400: %s", code, body)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestETags checks that each cached answer carries an ETag, that sending it
// back is a 304, and that a change of the data changes the tag.
func TestETags(t *testing.T) {
	t.Parallel()
	f := setupBrowse(t, api.Config{})
	paths := []string{"/users/by-id/a01", "/users/by-id/a01/history", "/users?name=user01", "/users?organization=Acme", "/organizations/Acme", "/organizations"}
	tags := map[string]string{}
	for _, p := range paths {
		code, h, body := f.c.get(p)
		tag := h.Get("ETag")
		if code != 200 || tag == "" {
			t.Fatalf("%s: %d, ETag %q: %s", p, code, tag, body)
		}
		tags[p] = tag
		for _, inm := range []string{tag, "W/" + tag, `"x", ` + tag, "*"} {
			code, h, body := f.c.get(p, "If-None-Match", inm)
			if code != http.StatusNotModified || len(body) != 0 || h.Get("ETag") != tag {
				t.Errorf("%s If-None-Match %s: %d, ETag %q, %d bytes; want 304, the same tag, no body", p, inm, code, h.Get("ETag"), len(body))
			}
		}
		if code, _, _ := f.c.get(p, "If-None-Match", `"other"`); code != 200 {
			t.Errorf("%s with another tag: %d, want 200", p, code)
		}
	}
	// user01 moves to Beta and a new organization arrives: every answer
	// above changes.
	f.w.write(t, []event.User{ev("a01", event.UserUpdated, "user01", "Beta", t0.Add(time.Hour))}, event.Org{Name: "Delta", CreatedAt: t0, LogTime: t0})
	for _, p := range paths {
		code, h, _ := f.c.get(p, "If-None-Match", tags[p])
		if code != 200 || h.Get("ETag") == tags[p] {
			t.Errorf("%s after a change: %d, ETag %q (was %q); want 200 and a new tag", p, code, h.Get("ETag"), tags[p])
		}
	}
}
