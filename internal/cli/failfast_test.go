package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/produce"
)

// bufferedCount counts the records a client accepted into its buffer.
type bufferedCount struct{ n atomic.Int64 }

func (c *bufferedCount) OnProduceRecordBuffered(*kgo.Record) { c.n.Add(1) }

// Against a dead broker, once the first buffer-full of records times out no
// further record enters the client, and the whole input fails within about
// one delivery timeout: without failFast, later records would wait out
// timeouts of their own.
func TestFailFastStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := kafka.New(kafka.Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(port)}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const maxBuffered, records = 100, 1000
	var buffered bufferedCount
	cl, err := conn.NewClient("test", kgo.RecordDeliveryTimeout(time.Second), kgo.MaxBufferedRecords(maxBuffered), kgo.WithHooks(&buffered))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newFailFast(ctx, cl)
	defer p.Close()

	values := make([]json.RawMessage, records)
	for i := range values {
		values[i] = json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)
	}
	start := time.Now()
	n, err := produce.Records(ctx, p, "t", values, "", nil)
	took := time.Since(start)
	if n != 0 || !errors.Is(err, kgo.ErrRecordTimeout) {
		t.Fatalf("Records = %d, %v; want 0 and a record timeout", n, err)
	}
	if !errors.Is(p.Err(), kgo.ErrRecordTimeout) {
		t.Errorf("Err() = %v, want the first failure, a record timeout", p.Err())
	}
	// The first buffer-full, and at most one more record that was waiting
	// for room when it failed.
	if got := buffered.n.Load(); got > maxBuffered+1 {
		t.Errorf("%d records entered the client after the first failure's buffer-full of %d", got, maxBuffered)
	}
	// One delivery timeout in all: the record that was waiting for room
	// when the first failed must not wait out a second one.
	if took > 1800*time.Millisecond {
		t.Errorf("took %s, want about one 1s delivery timeout", took)
	}
}
