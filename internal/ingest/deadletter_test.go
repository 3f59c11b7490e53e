package ingest_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamjoin/streamjoin/internal/ingest"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// crashingWriter fails every batch after its dead letters were produced, as
// a process killed between the DLQ acknowledgement and the Postgres commit
// would leave things.
type crashingWriter struct {
	ingest.Writer
	attempts atomic.Int64
}

func (w *crashingWriter) WriteLog(context.Context, *store.Batch) error {
	w.attempts.Add(1)
	// A dropped connection: the consumer retries it, as it would a crash
	// of its link to PostgreSQL.
	return fmt.Errorf("simulated crash before commit: %w", io.ErrUnexpectedEOF)
}

// TestDeadLettersNotDuplicatedAfterCrash: a member produces dead letters and
// never commits; its successor reads the DLQ's tail on assignment and does not
// produce them again.
func TestDeadLettersNotDuplicatedAfterCrash(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	users, orgs := workload(3, 100, 1500, 10, 200)
	produce(t, e.broker, "user_events", users)
	produce(t, e.broker, "org_events", orgs)
	cfg := e.config(5000)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	w := &crashingWriter{Writer: e.st}
	stop := e.startWith(t, cfg, w)
	// Wait until the member has produced user dead letters and failed to
	// commit their batch: a poll may hold only some partitions, so the
	// first failed commits need not be those of user dead letters.
	for deadline := time.Now().Add(30 * time.Second); w.attempts.Load() < 2 || e.endOffsets(t, "user_events.dlq") == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d failed commits and %d user dead letters; want at least 2 and 1", w.attempts.Load(), e.endOffsets(t, "user_events.dlq"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	e.start(t, e.config(5000))
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": orgs})
	e.checkState(t, users, orgs)
	e.checkDLQ(t, "user_events", users, true)
	e.checkDLQ(t, "org_events", orgs, true)
}

// TestDeadLetterProduceFailureHoldsOffset: while the broker refuses the dead
// letter, the partition's stored offset does not move past the bad record;
// once the broker accepts it, the partition flows on and the DLQ holds it
// once.
func TestDeadLetterProduceFailureHoldsOffset(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	var failing atomic.Bool
	var refused atomic.Int64
	failing.Store(true)
	// The consumer produces nothing but dead letters, so refuse every
	// produce request while failing is set.
	e.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	// Before the control takes effect for the consumer, put one bad record
	// and then good ones on partition 0. This producer's requests go through
	// while failing is briefly off.
	failing.Store(false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker), kgo.DefaultProduceTopic("user_events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{{Value: []byte(`{"id":"bad"`)}}
	for i := range 5 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":"u%d","event_type":"User Created","username":"n%d","received_at":"2021-03-01 00:00:00"}`, i, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	failing.Store(true)

	e.start(t, e.config(100))
	for deadline := time.Now().Add(30 * time.Second); refused.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the consumer never tried to produce the dead letter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var next *int64
	err = e.conn(t).QueryRow(context.Background(), "SELECT next_offset FROM "+e.schema+".kafka_offsets WHERE topic = 'user_events' AND partition = 0").Scan(&next)
	if err != nil {
		t.Fatal(err)
	}
	if next != nil {
		t.Fatalf("stored offset moved to %d while the dead letter was refused", *next)
	}

	failing.Store(false)
	users := []*rec{{invalid: true, partition: 0, offset: 0, value: recs[0].Value}}
	for i := 1; i < len(recs); i++ {
		users = append(users, &rec{partition: 0, offset: int64(i)})
	}
	e.waitCaughtUp(t, map[string][]*rec{"user_events": users, "org_events": nil})
	e.checkDLQ(t, "user_events", users, true)
}

// TestRefusesADLQWithFewerPartitions: dead letters of partition p go to DLQ
// partition p, so a DLQ topic with fewer partitions than its source is a
// start-up error that names it.
func TestRefusesADLQWithFewerPartitions(t *testing.T) {
	t.Parallel()
	e := setup(t, kfake.SeedTopics(6, "user_events", "org_events"))
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.broker))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 2, 1, nil, "user_events.dlq"); err != nil {
		t.Fatal(err)
	}
	c, err := ingest.New(e.config(100), e.connector(t), e.st, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "user_events.dlq has 2 partitions, fewer than the 6") {
		t.Fatalf("Run = %v, want an error about user_events.dlq's partitions", err)
	}
}
