// Package produce sends the JSON objects of a file to a Kafka topic, one
// record per object: the `streamjoin produce` command and the dev sample
// loader.
package produce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer is the part of *kgo.Client that Records needs.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	Flush(ctx context.Context) error
}

// Decode reads a JSON array of values, or a stream of values (NDJSON or
// concatenated JSON), and returns each value's bytes.
func Decode(r io.Reader) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := Each(r, func(v json.RawMessage) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Each reads what Decode reads and calls fn with each value in order,
// holding one value at a time: memory is bounded by the largest value, not
// the input. A value's bytes are fn's to keep. It stops at fn's first error
// and returns it unwrapped; a malformed input returns an error naming the
// value where reading failed.
func Each(r io.Reader, fn func(json.RawMessage) error) error {
	br := bufio.NewReader(r)
	dec := json.NewDecoder(br)
	first, err := peekNonSpace(br)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	n := 0
	if first == '[' {
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("reading JSON array: %w", err)
		}
		for dec.More() {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return fmt.Errorf("reading element %d: %w", n, err)
			}
			if err := fn(v); err != nil {
				return err
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("reading JSON array end: %w", err)
		}
		// Anything but space after the array would be silently dropped.
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("after the JSON array's end: want the end of input (%v)", err)
		}
		return nil
	}
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading value %d: %w", n, err)
		}
		if err := fn(v); err != nil {
			return err
		}
		n++
	}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			return b, br.UnreadByte()
		}
	}
}

// Key returns the record key for value: the string form of its top-level
// field keyField (a string as is, anything else as its JSON text), or nil
// when keyField is empty, value is not an object or the field is absent.
func Key(value []byte, keyField string) []byte {
	if keyField == "" {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(value, &obj) != nil {
		return nil
	}
	raw, ok := obj[keyField]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return []byte(raw)
}

// MissingKey returns the indexes of the values that have no key in
// keyField: values that are not JSON objects, or whose field keyField is
// absent or null. It returns none when keyField is empty (no key asked for).
func MissingKey(values []json.RawMessage, keyField string) []int {
	if keyField == "" {
		return nil
	}
	var missing []int
	for i, v := range values {
		if Key(v, keyField) == nil {
			missing = append(missing, i)
		}
	}
	return missing
}

// Records produces values to topic, keyed by keyField, and waits until every
// one is acknowledged. progress, if not nil, is called after each ack. It
// returns how many were acknowledged and the first error.
func Records(ctx context.Context, p Producer, topic string, values []json.RawMessage, keyField string, progress func()) (int, error) {
	var (
		mu       sync.Mutex
		acked    int
		firstErr error
	)
	for _, v := range values {
		rec := &kgo.Record{Topic: topic, Key: Key(v, keyField), Value: []byte(v)}
		p.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			acked++
			if progress != nil {
				progress()
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		return acked, fmt.Errorf("flushing to %s: %w", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return acked, fmt.Errorf("producing to %s: %w", topic, firstErr)
	}
	return acked, nil
}
