package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/kafka"
)

// File states in the manifest.
const (
	stateProducing = "producing" // Next records are in; more follow
	stateDone      = "done"      // every record is in
	stateFailed    = "failed"    // not JSON: none of it is in
)

// entry is a file's record in the manifest: the value of the record keyed
// by manifestKey. Each transaction that produces records of a file writes
// the file's entry with it, so the committed entry always says exactly how
// many of its records are committed.
type entry struct {
	Source  string `json:"source"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Version string `json:"version"` // mtime in ns (directory) or ETag (S3)
	Next    int64  `json:"next"`    // records committed: the index of the next one
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// file is a complete file a source offers: its name within the source and
// its identity.
type file struct {
	Name    string
	Size    int64
	Version string
}

// same reports whether e is about f's current content.
func (e entry) same(f file) bool { return e.Size == f.Size && e.Version == f.Version }

func manifestKey(source, name string) []byte { return []byte(source + "\x00" + name) }

// ensureTopic creates the manifest topic, compacted, if it does not exist.
func ensureTopic(ctx context.Context, conn *kafka.Connector, topic string) error {
	cl, err := conn.NewClient("watch-admin")
	if err != nil {
		return err
	}
	defer cl.Close()
	compact := "compact"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating manifest topic %s: %w", topic, err)
	}
	return nil
}

// readManifest reads the manifest topic read_committed, from the start to
// its last stable offsets, and returns the last entry of each of source's
// files. It must run after the producer has claimed the transactional id,
// so that a predecessor's open transaction is aborted and does not hold
// the stable offset back.
func readManifest(ctx context.Context, conn *kafka.Connector, topic, source string) (map[string]entry, error) {
	cl, err := conn.NewClient("watch-manifest",
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A partition's last stable offset may follow a commit marker:
		// keeping the markers is how the reader sees that it got there.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the manifest's offsets: %w", err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	out := map[string]entry{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the manifest: %w", err)
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("reading the manifest: %w", err)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() || r.Value == nil {
				return
			}
			var e entry
			if err := json.Unmarshal(r.Value, &e); err != nil {
				bad = fmt.Errorf("manifest record at %d/%d: %w", r.Partition, r.Offset, err)
				return
			}
			if e.Source == source {
				out[e.Name] = e
			}
		})
		if bad != nil {
			return nil, bad
		}
	}
	return out, nil
}
