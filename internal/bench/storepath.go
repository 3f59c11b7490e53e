package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// storePath is (b): the store's exactly-once write path fed directly, in
// batches of BatchSize records, as the consumer's lanes write them: each
// batch's state split by key among Writers transactions (store.WriteState),
// then its raw logs and offsets split by partition (store.WriteLog), each
// stage's transactions in parallel. Unlike the consumer, a batch's state
// does not overlap the previous batch's log.
func (b *bencher) storePath(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_b_%d", run)
	st, err := b.freshSchema(ctx, schema, b.cfg.Writers+1)
	if err != nil {
		return err
	}
	defer st.Close()
	defer b.dropSchema(ctx, schema)
	start := time.Now()
	if err := b.writeItems(ctx, st); err != nil {
		return err
	}
	r.StorePath = float64(len(b.data.items)) / time.Since(start).Seconds()
	r.storeDigest, err = b.digest(ctx, schema)
	return err
}

// writeItems writes the whole dataset to st as (b) does: in batches of
// BatchSize records, each batch's state split by key and its log by
// partition, each stage's transactions in parallel.
func (b *bencher) writeItems(ctx context.Context, st *store.Store) error {
	var tps []store.TopicPartition
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, store.TopicPartition{Topic: userTopic, Partition: p}, store.TopicPartition{Topic: orgTopic, Partition: p})
	}
	claims, err := st.ClaimOffsets(ctx, tps)
	if err != nil {
		return err
	}
	next := map[store.TopicPartition]*int64{}
	items := b.data.items
	for i := 0; i < len(items); i += b.cfg.BatchSize {
		batch := &store.Batch{UserTopic: userTopic, OrgTopic: orgTopic}
		last := map[store.TopicPartition]int64{}
		for _, it := range items[i:min(i+b.cfg.BatchSize, len(items))] {
			topic := userTopic
			if it.kind == workload.OrgEvent {
				topic = orgTopic
			}
			last[store.TopicPartition{Topic: topic, Partition: it.pos.Partition}] = it.pos.Offset
			switch {
			case !it.valid:
			case it.kind == workload.UserEvent:
				batch.Users = append(batch.Users, it.user)
			default:
				batch.Orgs = append(batch.Orgs, it.org)
			}
		}
		for tp, off := range last {
			batch.Offsets = append(batch.Offsets, store.OffsetAdvance{Topic: tp.Topic, Partition: tp.Partition, Generation: claims[tp].Generation, From: next[tp], To: off + 1})
		}
		if err := parallel(batch.SplitByKey(b.cfg.Writers), func(sub *store.Batch) error { return st.WriteState(ctx, sub) }); err != nil {
			return err
		}
		if err := parallel(batch.Split(b.cfg.Writers), func(sub *store.Batch) error { return st.WriteLog(ctx, sub) }); err != nil {
			return err
		}
		for _, a := range batch.Offsets {
			to := a.To
			next[store.TopicPartition{Topic: a.Topic, Partition: a.Partition}] = &to
		}
	}
	return nil
}

// parallel runs write on each batch at once and returns the first error.
func parallel(subs []*store.Batch, write func(*store.Batch) error) error {
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for j, sub := range subs {
		wg.Go(func() { errs[j] = write(sub) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
