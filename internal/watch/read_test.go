package watch

import (
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestValues(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in string
		max      int
		want     int64 // values read; -1: a format error
	}{
		{name: "ndjson", in: "{\"a\":1}\n{\"a\":2}\n", max: 100, want: 2},
		{name: "array", in: `[{"a":1},2,"x"]`, max: 100, want: 3},
		{name: "empty", in: "", max: 100, want: 0},
		{name: "not json", in: "id,name\n1,x\n", max: 100, want: -1},
		{name: "truncated", in: "{\"a\":1}\n{\"a\":", max: 100, want: -1},
		{name: "unclosed array", in: `[{"a":1}`, max: 100, want: -1},
		{name: "value over max", in: "{\"a\":1}\n{\"a\":\"" + strings.Repeat("x", 200) + "\"}\n", max: 100, want: -1},
		{name: "value at max", in: `{"a":"` + strings.Repeat("x", 92) + `"}`, max: 100, want: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n int64
			err := values(strings.NewReader(tt.in), tt.max, func(int64, json.RawMessage) error { n++; return nil })
			var fe *formatError
			switch {
			case tt.want < 0 && !errors.As(err, &fe):
				t.Errorf("err = %v, want a format error", err)
			case tt.want >= 0 && (err != nil || n != tt.want):
				t.Errorf("read %d values, err %v; want %d, nil", n, err, tt.want)
			}
		})
	}
}

// TestValuesReadErrorIsNotFormat: a failure to read (a broken connection
// to S3) must be retried, not fail the file.
func TestValuesReadErrorIsNotFormat(t *testing.T) {
	t.Parallel()
	broken := io.MultiReader(strings.NewReader("{\"a\":1}\n{\"a\""), errReader{})
	err := values(broken, 100, func(int64, json.RawMessage) error { return nil })
	var fe *formatError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("err = %v, want a read error that is not a format error", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// endless is a JSON string that does not end: `["xxxxxxxx…`, 64 MiB of
// it (so that a broken cap fails the test rather than the machine).
type endless struct {
	started bool
	n       int
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n >= 64<<20 {
		return 0, io.EOF
	}
	e.n += len(p)
	i := 0
	if !e.started {
		p[0], p[1] = '[', '"'
		i, e.started = 2, true
	}
	for ; i < len(p); i++ {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestValuesMemoryBounded: one value with no end fails once it passes the
// limit, having allocated about the limit, not the input (the decoder
// alone would buffer it all: a 2 GiB file as one value would need 2 GiB).
func TestValuesMemoryBounded(t *testing.T) {
	const limit = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := values(&endless{}, limit, func(int64, json.RawMessage) error { return nil })
	runtime.ReadMemStats(&after)
	var fe *formatError
	if !errors.As(err, &fe) || !strings.Contains(fe.reason, "max-record-bytes") {
		t.Fatalf("err = %v, want a format error about --max-record-bytes", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*limit {
		t.Errorf("allocated %d MiB to refuse a value over %d MiB", alloc>>20, limit>>20)
	}
}
