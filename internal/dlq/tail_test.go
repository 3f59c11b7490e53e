package dlq_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// Tails gives, per source partition, the source offset of the last dead
// letter in its DLQ partition, and -1 for an empty one, including one that
// retention emptied (its start offset moved to its end), which must not be
// waited on.
func TestTails(t *testing.T) {
	t.Parallel()
	broker := setup(t, 10) // partition 0: source offsets 100..108 (even), partition 1: 101..109
	conn := connect(t, broker)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topicOf := func(s string) string { return s + ".dlq" }
	parts := []dlq.Partition{{Topic: "user_events", Partition: 0}, {Topic: "user_events", Partition: 1}}
	got, err := dlq.Tails(ctx, conn, topicOf, parts, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got[parts[0]] != 108 || got[parts[1]] != 109 {
		t.Fatalf("Tails = %v, want 108 and 109", got)
	}
	// Retention empties partition 0.
	adm, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offs := kadm.Offsets{}
	offs.AddOffset("user_events.dlq", 0, 5, -1)
	if res, err := kadm.NewClient(adm).DeleteRecords(ctx, offs); err != nil || res.Error() != nil {
		t.Fatalf("deleting records: %v %v", err, res.Error())
	}
	start := time.Now()
	got, err = dlq.Tails(ctx, conn, topicOf, parts, testenv.Logger(t))
	if err != nil {
		t.Fatalf("Tails after retention: %v (after %v)", err, time.Since(start))
	}
	if got[parts[0]] != -1 || got[parts[1]] != 109 {
		t.Fatalf("Tails after retention = %v, want -1 and 109", got)
	}
}
