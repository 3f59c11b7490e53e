package watch

import (
	"context"
	"io"
	"strings"
	"time"
)

// source is where files come from: a directory or an S3 prefix. A source
// is used by one goroutine at a time.
type source interface {
	// list returns the files that are complete now, by name, and how soon
	// a file not yet complete may become so (0: no such file).
	list(ctx context.Context) (files []file, recheck time.Duration, err error)
	// open returns f's content. It fails if f changed since it was listed,
	// where the source can tell.
	open(ctx context.Context, f file) (io.ReadCloser, error)
	// finish puts away f, whose manifest entry says state (done or failed,
	// with reason), so that it is not listed again. It is called after the
	// entry is committed, and again after a restart if it was not done:
	// it must be idempotent.
	finish(ctx context.Context, f file, state, reason string) error
	// wait blocks until something may have changed in the source, d has
	// passed, or ctx ends.
	wait(ctx context.Context, d time.Duration)
	// close releases what the source holds.
	close() error
}

// Suffixes of the files that accompany a data file and are never taken.
const (
	doneSuffix   = ".done"
	reasonSuffix = ".reason"
)

// takeable reports whether name may be a data file: not hidden, not a
// marker, a reason file or a file still being written.
func takeable(name string, tempSuffixes []string) bool {
	base := name[strings.LastIndex(name, "/")+1:]
	if base == "" || strings.HasPrefix(base, ".") || strings.HasSuffix(name, doneSuffix) || strings.HasSuffix(name, reasonSuffix) {
		return false
	}
	for _, s := range tempSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}
