package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/testenv"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// testBencher is a bencher on the test PostgreSQL with a small workload.
func testBencher(t *testing.T) *bencher {
	t.Helper()
	cfg := Config{
		Workload:   workload.Config{Users: 50, Orgs: 5, Events: 500, OrgEvents: 20},
		Runs:       1,
		SeedSample: 10,
		FreshRate:  100,
	}.WithDefaults()
	return &bencher{cfg: cfg, dsn: testenv.PostgresDSN(t), log: testenv.Logger(t), quiet: slog.New(slog.DiscardHandler), progress: func(string) {}, commitWait: defaultCommitWait}
}

// TestPartitionOfMatchesKgo produces keyed records with a default client and
// checks that each lands where partitionOf says.
func TestPartitionOfMatchesKgo(t *testing.T) {
	t.Parallel()
	kb, err := newBroker(testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer kb.close()
	cl, err := kb.kafka.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	seen := map[int32]bool{}
	for i := 0; i < 200; i++ {
		key := []byte(fmt.Sprintf("2021-05-01 10:%02d:%02d.%d", i/60, i%60, i))
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: userTopic, Key: key, Value: []byte("{}")}).First()
		if err != nil {
			t.Fatal(err)
		}
		if got := partitionOf(key); got != r.Partition {
			t.Errorf("key %q: partitionOf = %d, kgo produced to %d", key, got, r.Partition)
		}
		seen[r.Partition] = true
	}
	if len(seen) != partitions {
		t.Errorf("200 keys reached %d of %d partitions", len(seen), partitions)
	}
}

func TestFirstErrorKeepsTheFirst(t *testing.T) {
	t.Parallel()
	var f firstError
	if f.get() != nil {
		t.Fatal("non-nil before any error")
	}
	first, second := errors.New("first"), errors.New("second")
	f.set(first)
	f.set(second)
	if got := f.get(); got != first {
		t.Errorf("got %v, want the first error", got)
	}
}

// TestSeedLoopFailsOnAnyError gives the per-event loop a user whose id
// PostgreSQL rejects (a NUL byte): the measurement must fail and count it.
func TestSeedLoopFailsOnAnyError(t *testing.T) {
	t.Parallel()
	user := func(id string, off int64) item {
		name := "n" + id
		return item{kind: workload.UserEvent, valid: true, pos: event.Position{Offset: off}, user: event.User{
			ID: id, Type: event.UserCreated, Username: &name, ReceivedAt: time.Unix(1_600_000_000, 0).UTC(),
			Pos: event.Position{Offset: off}, LogTime: time.Now(),
		}}
	}
	tests := []struct {
		name    string
		items   []item
		wantErr string
	}{
		{"all succeed", []item{user("a", 0), user("b", 1), user("c", 2)}, ""},
		{"one insert fails", []item{user("a", 0), user("b\x00", 1), user("c", 2)}, "1 of 3 events failed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := testBencher(t)
			b.data = &dataset{items: tt.items}
			var r RunResult
			err := b.seedLoop(context.Background(), 900+i, &r)
			if tt.wantErr == "" {
				if err != nil || r.SeedLoop <= 0 {
					t.Fatalf("err %v, rate %v: want success and a positive rate", err, r.SeedLoop)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSteadyCountsEveryRecord runs the freshness stream with nothing
// consuming it: a record that is never committed must fail the
// measurement, not be left out of it. With the offsets already past every
// record, each one must be measured.
func TestSteadyCountsEveryRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		committed bool
		wantErr   string
	}{
		{"nothing commits", false, "not committed within"},
		{"offsets already past every record", true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := testBencher(t)
			b.commitWait = 500 * time.Millisecond
			schema := fmt.Sprintf("bench_steady_test_%d", i)
			st, err := b.freshSchema(ctx, schema, 1)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			t.Cleanup(func() { _ = b.dropSchema(context.Background(), schema) })
			conn, err := b.conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if tt.committed {
				if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".kafka_offsets (topic, partition, next_offset) SELECT t, p, 1000000 FROM unnest($1::text[]) t, generate_series(0, $2 - 1) p", []string{userTopic, orgTopic}, partitions); err != nil {
					t.Fatal(err)
				}
			}
			kb, err := newBroker(b.log)
			if err != nil {
				t.Fatal(err)
			}
			defer kb.close()
			lat, err := b.steady(ctx, kb.kafka, conn, schema, 1, time.Second, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v (%d samples), want one containing %q", err, len(lat), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := 100 + 100/100 + 1; len(lat) != want {
				t.Errorf("%d samples, want one per record: %d", len(lat), want)
			}
		})
	}
}
