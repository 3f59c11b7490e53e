package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/streamjoin/streamjoin/internal/produce"
)

// formatError says a file is not what watch takes: not a JSON array or a
// stream of JSON values, or a value over MaxRecordBytes. Such a file fails
// whole and none of it is produced.
type formatError struct{ reason string }

func (e *formatError) Error() string { return e.reason }

// errValueTooLarge is what the capped reader returns when one value would
// take more than the cap.
var errValueTooLarge = errors.New("value larger than max-record-bytes")

// readSlack is what the decoder may read past a value's end (its buffers'
// read-ahead and the space between values) before the cap counts it.
const readSlack = 64 << 10

// values reads r's JSON values in order (produce.Each's framing) and calls
// fn with each one and its index. Memory is bounded: no value may be larger
// than maxBytes, and the reader refuses to feed the decoder more than
// maxBytes past the end of the last value, so not even an endless value is
// buffered whole. A framing problem or an oversized value is a
// *formatError; a failure to read r is returned as such (wrapped); fn's
// errors are returned unwrapped.
func values(r io.Reader, maxBytes int, fn func(i int64, v json.RawMessage) error) error {
	cr := &cappedReader{r: r, limit: int64(maxBytes) + readSlack}
	var (
		i     int64
		fnErr error
	)
	err := produce.Each(cr, func(v json.RawMessage) error {
		if len(v) > maxBytes {
			return &formatError{fmt.Sprintf("value %d is %d bytes, over --max-record-bytes %d", i, len(v), maxBytes)}
		}
		cr.limit = cr.read + int64(maxBytes) + readSlack
		if err := fn(i, v); err != nil {
			fnErr = err
			return err
		}
		i++
		return nil
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil:
		return fnErr
	case cr.err != nil && !errors.Is(cr.err, errValueTooLarge):
		return fmt.Errorf("reading: %w", cr.err)
	case errors.Is(err, errValueTooLarge):
		return &formatError{fmt.Sprintf("value %d is larger than --max-record-bytes %d", i, maxBytes)}
	}
	var fe *formatError
	if errors.As(err, &fe) {
		return fe
	}
	return &formatError{"not a JSON array or a stream of JSON values (NDJSON): " + err.Error()}
}

// cappedReader reads r until limit bytes have been read in all, then fails.
// It keeps the first error other than EOF.
type cappedReader struct {
	r     io.Reader
	read  int64
	limit int64
	err   error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.read >= c.limit {
		c.err = errValueTooLarge
		return 0, c.err
	}
	if room := c.limit - c.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}
