package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// produceTo sends user events with the given event times to one partition.
func produceTo(t *testing.T, broker string, partition int32, ats ...time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, at := range ats {
		v := fmt.Sprintf(`{"id":"u%d","event_type":"User Created","username":"n","received_at":%q}`, i, at.Format(time.RFC3339))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "user_events", Partition: partition, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// watermarkState reads, on conn, the stored watermark of user_events and
// the idle mark and event time of partition p.
func (e *env) watermarkState(t *testing.T, conn *pgx.Conn, p int32) (wm *time.Time, idle bool, maxAt *time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := conn.QueryRow(ctx, "SELECT idle_since IS NOT NULL, max_event_time FROM "+e.schema+".kafka_offsets WHERE topic = 'user_events' AND partition = $1", p).Scan(&idle, &maxAt); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT watermark FROM "+e.schema+".watermarks WHERE topic = 'user_events'").Scan(&wm); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return wm, idle, maxAt
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdlePartitionReleasesTheWatermark: events go to partition 0 only.
// Partition 1, which never has one, holds the topic's watermark back until
// it has been idle for the idle timeout; then the watermark is partition
// 0's greatest event time minus the out-of-orderness. When partition 1
// gets an older event it is no longer idle, and the watermark does not go
// back. A consumer restarted on the same schema finds it where it was.
func TestIdlePartitionReleasesTheWatermark(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(2, "user_events", "org_events"))
	cfg := e.config(100)
	cfg.Partitions = 2
	cfg.IdleTimeout = 400 * time.Millisecond
	cfg.WatermarkInterval = 20 * time.Millisecond
	cfg.MaxOutOfOrderness = 5 * time.Second
	base := time.Date(2021, 3, 1, 12, 0, 0, 0, time.UTC)
	conn := testenv.Conn(t)
	produceTo(t, e.broker, 0, base.Add(10*time.Second), base.Add(30*time.Second), base.Add(20*time.Second))
	stop := e.start(t, cfg)

	want := base.Add(30*time.Second - 5*time.Second)
	waitUntil(t, "the watermark to pass partition 1 once it is idle", func() bool {
		wm, idle, _ := e.watermarkState(t, conn, 1)
		return idle && wm != nil && wm.Equal(want)
	})
	if _, _, maxAt := e.watermarkState(t, conn, 0); maxAt == nil || !maxAt.Equal(base.Add(30*time.Second)) {
		t.Errorf("partition 0's checkpointed event time %v, want %v", maxAt, base.Add(30*time.Second))
	}

	produceTo(t, e.broker, 1, base.Add(5*time.Second))
	waitUntil(t, "partition 1 to be active again", func() bool {
		_, idle, maxAt := e.watermarkState(t, conn, 1)
		return !idle && maxAt != nil
	})
	if wm, _, _ := e.watermarkState(t, conn, 1); wm == nil || !wm.Equal(want) {
		t.Errorf("after an older event on partition 1, watermark %v, want it to stay %v", wm, want)
	}
	stop()

	// A restart: from the stored watermark, not a recomputation (which,
	// with partition 1 active at 5s, would be 0s). The exported gauge
	// appears with the first advance after the restart.
	reg := prometheus.NewRegistry()
	c, err := ingest.New(cfg, e.connector(t), e.st, ingest.NewMetrics(reg), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	var got float64
	waitUntil(t, "the watermark gauge after the restart", func() bool {
		v, ok := gauge(t, reg, "streamjoin_watermark_seconds", "user_events")
		got = v
		return ok
	})
	if w := float64(want.Unix()); got != w {
		t.Errorf("after a restart, the watermark gauge is %v, want %v", time.Unix(int64(got), 0).UTC(), want)
	}
}

// gauge reads a gauge's value for a topic from reg, and whether it exists.
func gauge(t *testing.T, reg *prometheus.Registry, name, topic string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}
