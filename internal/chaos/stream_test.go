package chaos_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/workload"
)

type position struct {
	partition int32
	offset    int64
}

// stream is what was produced, as the checks need it.
type stream struct {
	done chan struct{}
	err  error

	mu      sync.Mutex
	want    workload.Expected
	ends    map[string]map[int32]int64 // topic → partition → end offset
	invalid map[string]map[position]bool
	valid   map[string]int
	// The valid records as acknowledged, for the as-of join's oracle
	// (enriched_test.go).
	users []event.User
	orgs  []event.Org
}

// ended reports whether the producer has finished.
func (s *stream) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func topicOf(k workload.Kind) string {
	if k == workload.OrgEvent {
		return "org_events"
	}
	return "user_events"
}

// produce generates cfg's stream and produces it at about rate records per
// second (0: as fast as possible), in the background. pause, if not nil, is
// called before each chunk and may block.
func (h *harness) produce(cfg workload.Config, rate int, pause func()) *stream {
	h.t.Helper()
	g, err := workload.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	s := &stream{done: make(chan struct{}), ends: map[string]map[int32]int64{}, invalid: map[string]map[position]bool{}, valid: map[string]int{}}
	for _, topic := range h.topics {
		s.ends[topic] = map[int32]int64{}
		s.invalid[topic] = map[position]bool{}
	}
	go func() {
		defer close(s.done)
		s.err = h.produceAll(g, s, rate, pause)
		s.want = g.Expected()
	}()
	h.t.Cleanup(func() { <-s.done })
	return s
}

func (h *harness) produceAll(g *workload.Generator, s *stream, rate int, pause func()) error {
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(kgo.SeedBrokers(h.broker), kgo.ProducerLinger(5*time.Millisecond))
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	chunk := 1000
	var tick time.Duration
	if rate > 0 {
		chunk = max(1, rate/50)
		tick = 20 * time.Millisecond
	}
	var firstErr error
	var errMu sync.Mutex
	next := time.Now()
	for more := true; more; {
		if pause != nil {
			pause()
		}
		for i := 0; i < chunk; i++ {
			r, ok := g.Next()
			if !ok {
				more = false
				break
			}
			kr := &kgo.Record{Topic: topicOf(r.Kind), Key: r.Key, Value: r.Value}
			invalid, kind := r.Invalid, r.Kind
			cl.Produce(context.Background(), kr, func(kr *kgo.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				s.ends[kr.Topic][kr.Partition] = max(s.ends[kr.Topic][kr.Partition], kr.Offset+1)
				if invalid {
					s.invalid[kr.Topic][position{kr.Partition, kr.Offset}] = true
				} else {
					s.valid[kr.Topic]++
					s.keep(kind, kr)
				}
			})
		}
		if tick > 0 {
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
		if pause != nil {
			// A pause may be an outage: make sure what was produced so far
			// is acknowledged before the next chunk.
			if err := cl.Flush(context.Background()); err != nil {
				return err
			}
		}
	}
	if err := cl.Flush(context.Background()); err != nil {
		return err
	}
	return firstErr
}

// oracleDecoder decodes the valid records for the oracle (the as-of logic
// is the oracle's own; parsing is the decoder's, tested apart).
var oracleDecoder = event.NewDecoder(1 << 20)

// keep records a valid record's decoded event, with its position; s.mu is
// held.
func (s *stream) keep(kind workload.Kind, kr *kgo.Record) {
	pos := event.Position{Partition: kr.Partition, Offset: kr.Offset}
	if kind == workload.OrgEvent {
		if o, err := oracleDecoder.Org(kr.Value, pos); err == nil {
			s.orgs = append(s.orgs, o)
		}
		return
	}
	if u, err := oracleDecoder.User(kr.Value, pos); err == nil {
		s.users = append(s.users, u)
	}
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// streamConfig is the chaos stream: n user events keyed by time, 1%
// duplicates, 1% invalid, 5% out of order.
func streamConfig(n int, seed uint64) workload.Config {
	return workload.Config{Users: max(10, n/10), Orgs: max(5, n/100), Events: n, OrgEvents: n / 50,
		OutOfOrder: 0.05, Duplicates: 0.01, Invalid: 0.01, KeyBy: "time", Seed: seed}
}
