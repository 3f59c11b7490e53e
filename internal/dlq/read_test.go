package dlq_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// setup starts a broker holding user_events.dlq with n dead letters as the
// consumer writes them: even ones bad_timestamp, odd ones missing_field.
func setup(t *testing.T, n int) string {
	t.Helper()
	broker, _ := testenv.Kafka(t, kfake.SeedTopics(2, "user_events", "user_events.dlq"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		code, reason := "bad_timestamp", fmt.Sprintf(`bad_timestamp: received_at "day %d" is neither …`, i)
		if i%2 == 1 {
			code, reason = "missing_field", "missing_field: id is required"
		}
		recs = append(recs, &kgo.Record{Topic: "user_events.dlq", Partition: int32(i % 2),
			Key: []byte("k" + strconv.Itoa(i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Headers: []kgo.RecordHeader{
				{Key: "trace", Value: []byte("t" + strconv.Itoa(i))},
				{Key: dlq.HeaderError, Value: []byte(reason)},
				{Key: dlq.HeaderErrorCode, Value: []byte(code)},
				{Key: dlq.HeaderSourceTopic, Value: []byte("user_events")},
				{Key: dlq.HeaderSourcePartition, Value: []byte(strconv.Itoa(i % 2))},
				{Key: dlq.HeaderSourceOffset, Value: []byte(strconv.Itoa(100 + i))},
			}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return broker
}

func TestReadAndFilter(t *testing.T) {
	t.Parallel()
	broker := setup(t, 10)
	ctx := context.Background()
	for _, tc := range []struct {
		filter dlq.Filter
		want   int
	}{
		{dlq.Filter{}, 10},
		{dlq.Filter{Code: "bad_timestamp"}, 5},
		{dlq.Filter{Reason: `"day 4"`}, 1},
		{dlq.Filter{Code: "missing_field", Reason: "day"}, 0},
	} {
		var got []*dlq.Letter
		err := dlq.Read(ctx, "user_events.dlq", tc.filter, func(l *dlq.Letter) error { got = append(got, l); return nil }, connect(t, broker))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("filter %+v: %d letters, want %d", tc.filter, len(got), tc.want)
		}
		for _, l := range got {
			n, _ := strconv.Atoi(string(l.Key[1:]))
			if l.SourceTopic != "user_events" || l.SourceOffset != int64(100+n) || l.SourcePartition != int32(n%2) || !tc.filter.Match(l) {
				t.Errorf("letter %+v: wrong source or filter", l)
			}
			if len(l.Headers) != 1 || l.Headers[0].Key != "trace" {
				t.Errorf("letter %d: original headers %v, want only trace", n, l.Headers)
			}
		}
	}
	// An empty topic reads as nothing, at once.
	var n int
	if err := dlq.Read(ctx, "user_events", dlq.Filter{}, func(*dlq.Letter) error { n++; return nil }, connect(t, broker)); err != nil || n != 0 {
		t.Errorf("empty topic: %d letters, err %v", n, err)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	broker := setup(t, 6)
	ctx := context.Background()
	// A second dead letter for record 0's source position, as a paused
	// member can leave: replayed once.
	cl0, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	dup := []kgo.RecordHeader{{Key: dlq.HeaderError, Value: []byte("bad_timestamp: again")}, {Key: dlq.HeaderErrorCode, Value: []byte("bad_timestamp")},
		{Key: dlq.HeaderSourceTopic, Value: []byte("user_events")}, {Key: dlq.HeaderSourcePartition, Value: []byte("0")}, {Key: dlq.HeaderSourceOffset, Value: []byte("100")}}
	if err := cl0.ProduceSync(ctx, &kgo.Record{Topic: "user_events.dlq", Partition: 0, Key: []byte("k0"), Value: []byte(`{"n":0}`), Headers: dup}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl0.Close()
	dry, err := dlq.Replay(ctx, "user_events.dlq", dlq.Filter{Code: "bad_timestamp"}, true, connect(t, broker))
	if err != nil || dry.Matched != 4 || dry.Duplicates != 1 || dry.Replayed != 0 {
		t.Fatalf("dry run = %+v, %v; want 4 matched, 1 duplicate, none replayed", dry, err)
	}
	res, err := dlq.Replay(ctx, "user_events.dlq", dlq.Filter{Code: "bad_timestamp"}, false, connect(t, broker))
	if err != nil || res.Replayed != 3 || res.Topics["user_events"] != 3 {
		t.Fatalf("replay = %+v, %v; want 3 to user_events", res, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("user_events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got := map[string]string{}
	for len(got) < 3 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			if hs[dlq.HeaderError] != "" || hs["trace"] == "" || hs[dlq.HeaderReplayedFrom] == "" {
				t.Errorf("replayed record headers %v: want trace and replayed-from, no streamjoin.error", hs)
			}
			got[string(r.Key)] = string(r.Value)
		})
	}
	want := map[string]string{"k0": `{"n":0}`, "k2": `{"n":2}`, "k4": `{"n":4}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
}

func connect(t testing.TB, broker string) *kafka.Connector {
	t.Helper()
	conn, err := kafka.New(kafka.Config{Brokers: []string{broker}}, testenv.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
