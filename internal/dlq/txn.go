package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// DefaultTxnTimeout bounds a dead-letter transaction: the broker aborts one
// left open longer (a member that died inside it), which frees the
// partition's read_committed readers. A dead-letter transaction is one
// produce and a commit, so it is far shorter.
const DefaultTxnTimeout = 20 * time.Second

// TransactionalID is the transactional id under which the dead letters of
// source partition src are produced, for consumer group group. One per
// source partition, whoever owns it: a new owner initialising it fences
// every earlier producer of that partition's dead letters.
func TransactionalID(group string, src Partition) string {
	return fmt.Sprintf("%s.dlq.%s.%d", group, src.Topic, src.Partition)
}

// ErrFenced marks a produce refused because another producer initialised
// the same transactional id since this one did: the source partition has a
// new owner, or this producer was replaced for another reason (its
// transaction timed out). Nothing of the refused transaction is visible to
// read_committed readers.
var ErrFenced = errors.New("dead-letter producer fenced")

// TxnProducer produces the dead letters of one source partition in Kafka
// transactions under that partition's transactional id. It is used by one
// goroutine at a time; Close may be called from any.
type TxnProducer struct {
	cl  *kgo.Client
	src Partition
}

// NewTxnProducer creates the producer of src's dead letters and initialises
// its producer id, which bumps the transactional id's epoch: from then on no
// earlier producer of that id can add or commit anything, and the broker
// aborts a transaction one of them left open. Read the dead-letter tail
// after it returns, not before, to see everything that can ever be
// committed under the id by another producer. It blocks until the broker
// answers or ctx ends; on error nothing is left to close.
func NewTxnProducer(ctx context.Context, conn *kafka.Connector, group string, src Partition, timeout time.Duration) (*TxnProducer, error) {
	if timeout <= 0 {
		timeout = DefaultTxnTimeout
	}
	cl, err := conn.NewClient("dlq-producer",
		kgo.TransactionalID(TransactionalID(group, src)),
		kgo.TransactionTimeout(timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Closed on every lost claim or failure: no KIP-714 metrics,
		// whose final push makes Close wait (a second against kfake).
		kgo.DisableClientMetrics(),
	)
	if err != nil {
		return nil, err
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, classify(fmt.Errorf("initialising the dead-letter producer of %s/%d: %w", src.Topic, src.Partition, err))
	}
	return &TxnProducer{cl: cl, src: src}, nil
}

// Produce produces recs, dead letters of the producer's source partition in
// source offset order, in one transaction and commits it. It blocks until
// the commit is acknowledged or fails, or ctx ends.
//
// On any error the transaction's outcome is not to be relied on and the
// producer is not to be used again: Close it, and create a new one (which
// aborts what is left open) and read the tail again before producing more.
// An error wrapping ErrFenced means another producer took the transactional
// id over; anything else (a transport error, ctx) is worth retrying that
// way.
func (p *TxnProducer) Produce(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if r.Partition != p.src.Partition {
			return fmt.Errorf("dead letter for DLQ partition %d given to the producer of source partition %s/%d", r.Partition, p.src.Topic, p.src.Partition)
		}
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return classify(fmt.Errorf("beginning a dead-letter transaction: %w", err))
	}
	// kgo commits whatever succeeded if asked to: commit only if every
	// record was acknowledged, and otherwise leave the transaction for
	// the next producer of the id to abort.
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return classify(fmt.Errorf("producing %d dead letters of %s/%d: %w", len(recs), p.src.Topic, p.src.Partition, err))
	}
	if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return classify(fmt.Errorf("committing %d dead letters of %s/%d: %w", len(recs), p.src.Topic, p.src.Partition, err))
	}
	return nil
}

// Close closes the producer's client without ending an open transaction:
// the next producer of the id aborts it, or the broker does after the
// transaction timeout.
func (p *TxnProducer) Close() { p.cl.Close() }

// classify wraps err with ErrFenced when the broker says another producer
// has the transactional id.
func classify(err error) error {
	for _, fenced := range []error{kerr.ProducerFenced, kerr.InvalidProducerEpoch, kerr.InvalidProducerIDMapping} {
		if errors.Is(err, fenced) {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
	}
	return err
}
