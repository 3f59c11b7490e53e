package store_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// insertRaw writes n raw user rows at random ingested_at times in
// [from, to), and returns those times.
func insertRaw(t *testing.T, schema string, r *rand.Rand, n int, from, to time.Time) []time.Time {
	t.Helper()
	conn := testenv.Conn(t)
	var ats []time.Time
	for i := range n {
		at := from.Add(time.Duration(r.Int64N(int64(to.Sub(from)))))
		ats = append(ats, at)
		if _, err := conn.Exec(context.Background(), `INSERT INTO `+schema+`.user_events
			(topic, partition, "offset", id, event_type, received_at, kafka_timestamp, ingested_at)
			VALUES ('user_events', 0, $1, 'u', 'User Created', $2, $2, $2)`, i, at); err != nil {
			t.Fatalf("inserting a raw row at %s: %v", at, err)
		}
	}
	return ats
}

// TestRawLogRetentionKeepsTheWindow runs the partition maintenance once a
// day for ten simulated days (creating partitions ahead), writes rows all
// over that time, then applies a retention: every row inside the window is
// still there, and the days wholly outside it are gone.
func TestRawLogRetentionKeepsTheWindow(t *testing.T) {
	t.Parallel()
	for _, retention := range []time.Duration{24 * time.Hour, 3*24*time.Hour + 5*time.Hour, 8 * 24 * time.Hour} {
		t.Run(retention.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := setup(t)
			start := time.Now().UTC()
			for d := range 10 {
				if _, err := st.MaintainRawLogs(ctx, store.RawLogConfig{}, start.AddDate(0, 0, d)); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(uint64(retention), 1))
			ats := insertRaw(t, st.Schema(), r, 400, start.AddDate(0, 0, -1), start.AddDate(0, 0, 10))
			now := start.AddDate(0, 0, 10)
			ch, err := st.MaintainRawLogs(ctx, store.RawLogConfig{Retention: retention}, now)
			if err != nil {
				t.Fatal(err)
			}
			cutoff := now.Add(-retention)
			var inside, before int
			for _, at := range ats {
				if !at.Before(cutoff) {
					inside++
				}
				if at.Before(cutoff.UTC().Truncate(24 * time.Hour)) {
					before++
				}
			}
			var kept, keptInside int
			if err := testenv.Conn(t).QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE ingested_at >= $1) FROM "+st.Schema()+".user_events", cutoff).Scan(&kept, &keptInside); err != nil {
				t.Fatal(err)
			}
			if keptInside != inside {
				t.Errorf("%d rows inside the window kept, want all %d", keptInside, inside)
			}
			if kept > len(ats)-before {
				t.Errorf("%d rows kept of %d: the %d rows of whole days before the window should be gone (dropped %v)", kept, len(ats), before, ch.Dropped)
			}
			if before == 0 || len(ch.Dropped) == 0 {
				t.Errorf("nothing before the window (%d rows, dropped %v): the test proves little", before, ch.Dropped)
			}
		})
	}
}

// TestPartitioningKeepsEveryRawRow writes raw rows under the schema before
// the logs were partitioned, migrates, and finds every row, unchanged, in
// the partitioned logs, which then take new rows.
func TestPartitioningKeepsEveryRawRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.MigrateTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	now := time.Now().UTC()
	insertRaw(t, st.Schema(), r, 500, now.AddDate(-1, 0, 0), now)
	conn := testenv.Conn(t)
	digest := func() string {
		var d string
		if err := conn.QueryRow(ctx, `SELECT count(*) || ':' || md5(string_agg(format('%s|%s|%s|%s|%s', partition, "offset", id, received_at, ingested_at), ',' ORDER BY "offset")) FROM `+st.Schema()+`.user_events`).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := digest()
	if n, err := st.Migrate(ctx); err != nil || n == 0 {
		t.Fatalf("migrating: %d applied, %v", n, err)
	}
	if after := digest(); after != before {
		t.Errorf("raw rows after partitioning %s, before %s", after, before)
	}
	var kind string
	if err := conn.QueryRow(ctx, "SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", st.Schema()+".user_events").Scan(&kind); err != nil || kind != "p" {
		t.Errorf("user_events relkind %q (%v), want p (partitioned)", kind, err)
	}
	insertRaw(t, st.Schema(), r, 10, now, now.Add(time.Hour))
}

// TestOutboxPartitionsGoOnlyWhenEmpty: the outbox's daily partitions are
// created ahead like the raw logs'; one whose day ended more than a day ago
// is dropped only once the relay has deleted every row in it.
func TestOutboxPartitionsGoOnlyWhenEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.ChangelogStore(t)
	start := time.Now().UTC()
	if _, err := st.MaintainRawLogs(ctx, store.RawLogConfig{}, start); err != nil {
		t.Fatal(err)
	}
	conn := testenv.Conn(t)
	if _, err := conn.Exec(ctx, `INSERT INTO `+st.Schema()+`.changelog_outbox (created_at, rows, payload) VALUES ($1, 0, '{}')`, start); err != nil {
		t.Fatal(err)
	}
	first := st.Schema() + ".changelog_outbox_d" + start.Format("20060102")
	exists := func() bool {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", first).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	later := start.AddDate(0, 0, 3)
	if _, err := st.MaintainRawLogs(ctx, store.RawLogConfig{}, later); err != nil {
		t.Fatal(err)
	}
	if !exists() {
		t.Fatal("an outbox partition holding an unrelayed row was dropped")
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+st.Schema()+`.changelog_outbox`); err != nil {
		t.Fatal(err)
	}
	ch, err := st.MaintainRawLogs(ctx, store.RawLogConfig{}, later)
	if err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Errorf("the empty outbox partition of %s is still there three days later (dropped %v)", start.Format("2006-01-02"), ch.Dropped)
	}
	// Yesterday's partition (of later) stays: a transaction that began
	// before midnight may still write into it.
	if recent := st.Schema() + ".changelog_outbox_d" + later.AddDate(0, 0, -1).Format("20060102"); !existsTable(t, conn, recent) {
		t.Errorf("%s, whose day ended less than a day ago, was dropped", recent)
	}
}

func existsTable(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}
