package api_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/api"
	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestOrganizationActivity: GET /organizations/{name}/activity answers an
// organization's windows from the window state, in start order, a page at
// a time, each final or open, within from and to.
func TestOrganizationActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t), Activity: true, Window: time.Hour, AllowedLateness: time.Hour}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	claims, err := st.ClaimOffsets(ctx, []store.TopicPartition{{Topic: "u", Partition: 0}})
	if err != nil {
		t.Fatal(err)
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	users := []event.User{
		ev("a1", event.UserCreated, "a1", "Acme", at(10)), ev("a2", event.UserCreated, "a2", "Acme", at(20)),
		ev("a1", event.UserUpdated, "a1", "Acme", at(70)), ev("a1", event.UserDeleted, "", "Acme", at(80)),
		ev("b1", event.UserCreated, "b1", "Beta", at(210)),
	}
	for i := range users {
		users[i].Pos = event.Position{Offset: int64(i)}
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: users, Offsets: []store.OffsetAdvance{{
		Topic: "u", Partition: 0, Generation: claims[store.TopicPartition{Topic: "u", Partition: 0}].Generation, To: int64(len(users)), MaxEventTime: at(210)}}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The watermark reaches 3:30: Acme's two windows are final (their
	// ends plus an hour are behind it), Beta's 3:00 window is open.
	if _, err := st.AdvanceWatermarks(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FireWindows(ctx, "u", 100); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0"}, st, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := specClient{t: t, base: ts.URL}

	type window struct {
		Start   time.Time `json:"window_start"`
		Created int64     `json:"user_created"`
		Updated int64     `json:"user_updated"`
		Deleted int64     `json:"user_deleted"`
		Users   int64     `json:"active_users"`
		Status  string    `json:"status"`
	}
	type page struct {
		Org        string   `json:"organization_name"`
		Windows    []window `json:"windows"`
		NextCursor *string  `json:"next_cursor"`
	}
	text := func(ws []window) string {
		var parts []string
		for _, w := range ws {
			parts = append(parts, w.Start.Sub(t0).String()+":"+strings.Join([]string{itoa(w.Created), itoa(w.Updated), itoa(w.Deleted), itoa(w.Users)}, "/")+":"+w.Status)
		}
		return strings.Join(parts, " ")
	}
	for _, tt := range []struct {
		path, want string
	}{
		{"/organizations/Acme/activity", "0s:2/0/0/2:final 1h0m0s:0/1/1/1:final"},
		{"/organizations/Acme/activity?from=" + url.QueryEscape(at(60).Format(time.RFC3339)), "1h0m0s:0/1/1/1:final"},
		{"/organizations/Acme/activity?to=" + url.QueryEscape(at(60).Format(time.RFC3339)), "0s:2/0/0/2:final"},
		{"/organizations/Beta/activity", "3h0m0s:1/0/0/1:open"},
		{"/organizations/Nobody/activity", ""},
	} {
		code, _, body := c.get(tt.path)
		if code != 200 {
			t.Errorf("%s: %d %s", tt.path, code, body)
			continue
		}
		if got := text(decode[page](t, body).Windows); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
	// A page at a time.
	var all []window
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		path := "/organizations/Acme/activity?limit=1"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, _, body := c.get(path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		p := decode[page](t, body)
		all = append(all, p.Windows...)
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if got, want := text(all), "0s:2/0/0/2:final 1h0m0s:0/1/1/1:final"; got != want {
		t.Errorf("by pages of 1: %q, want %q", got, want)
	}
	for _, bad := range []string{
		"/organizations/Acme/activity?from=yesterday",
		"/organizations/Acme/activity?from=2021-03-01T02:00:00Z&to=2021-03-01T01:00:00Z",
		"/organizations/Acme/activity?limit=0",
		"/organizations/Acme/activity?cursor=AXUx",
	} {
		if code, _, body := c.get(bad); code != 400 {
			t.Errorf("%s: %d, want 400: %s", bad, code, body)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
