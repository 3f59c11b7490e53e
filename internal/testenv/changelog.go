package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/store"
)

// ChangelogStore opens a store with the changelog on, on a fresh, migrated
// schema of the test server, closed when t ends.
func ChangelogStore(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: PostgresDSN(t), Schema: Schema(t), Changelog: true}, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// ProfilesView reads schema's user_profiles view on conn as the changelog
// encodes it: user id → the profile's JSON (store.Profile, as the API
// shows it).
func ProfilesView(t testing.TB, conn *pgx.Conn, schema string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at FROM "+pgx.Identifier{schema, "user_profiles"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var p store.Profile
	if _, err := pgx.ForEachRow(rows, []any{&p.ID, &p.Username, &p.UserEmail, &p.UserType, &p.OrganizationName, &p.OrganizationTier, &p.ReceivedAt}, func() error {
		p.ReceivedAt = p.ReceivedAt.UTC()
		b, err := json.Marshal(&p)
		out[p.ID] = string(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitBlockedOrDone waits until some session of the test server waits for
// a lock that backend pid holds (it returns nil, false), or done yields (it
// returns that, true), for a test that starts a second writer while a first
// one holds its transaction open. It fails t after 10 s of neither.
func WaitBlockedOrDone(t testing.TB, pid uint32, done <-chan error) (error, bool) {
	t.Helper()
	conn := Conn(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			return err, true
		default:
		}
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, int32(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return nil, false
		}
		if time.Now().After(deadline) {
			t.Fatal("the second writer neither waited for the first nor finished")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
