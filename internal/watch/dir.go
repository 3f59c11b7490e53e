package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Subdirectories of a watched directory.
const (
	doneDir   = "done"
	failedDir = "failed"
)

// dirSource offers the complete files of one directory (not its
// subdirectories). File system events wake it at once; a rescan every
// RescanInterval catches whatever the events missed.
type dirSource struct {
	dir    string
	rule   string
	settle time.Duration
	rescan time.Duration
	temp   []string
	log    *slog.Logger
	now    func() time.Time

	events *fsnotify.Watcher // nil: rescans only
	seen   map[string]sighting
}

// sighting is how a file looked when last listed, and since when.
type sighting struct {
	size  int64
	mtime time.Time
	since time.Time
}

func newDirSource(cfg Config, logger *slog.Logger) (*dirSource, error) {
	st, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dir %s: not a directory", cfg.Dir)
	}
	s := &dirSource{
		dir: cfg.Dir, rule: cfg.Complete, settle: cfg.Settle, rescan: cfg.RescanInterval,
		temp: cfg.TempSuffixes, log: logger, now: time.Now, seen: map[string]sighting{},
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(cfg.Dir); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		logger.Warn("file system events unavailable; listing the directory every rescan interval instead",
			"dir", cfg.Dir, "rescan_interval", cfg.RescanInterval, "err", err)
	} else {
		s.events = w
	}
	return s, nil
}

func (s *dirSource) list(context.Context) ([]file, time.Duration, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("listing %s: %w", s.dir, err)
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	now := s.now()
	var (
		out     []file
		recheck time.Duration
		present = map[string]bool{}
	)
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !takeable(name, s.temp) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away since ReadDir
		}
		if err != nil {
			return nil, 0, fmt.Errorf("stat %s: %w", name, err)
		}
		present[name] = true
		f := file{Name: name, Size: info.Size(), Version: strconv.FormatInt(info.ModTime().UnixNano(), 10)}
		switch s.rule {
		case CompleteRename:
		case CompleteDone:
			if !names[name+doneSuffix] {
				continue
			}
		case CompleteSettle:
			seen, ok := s.seen[name]
			if !ok || seen.size != info.Size() || !seen.mtime.Equal(info.ModTime()) {
				seen = sighting{size: info.Size(), mtime: info.ModTime(), since: now}
				s.seen[name] = seen
			}
			if wait := seen.since.Add(s.settle).Sub(now); wait > 0 {
				if recheck == 0 || wait < recheck {
					recheck = wait
				}
				continue
			}
		}
		out = append(out, f)
	}
	for name := range s.seen {
		if !present[name] {
			delete(s.seen, name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, recheck, nil
}

func (s *dirSource) open(_ context.Context, f file) (io.ReadCloser, error) {
	fh, err := os.Open(filepath.Join(s.dir, f.Name))
	if err != nil {
		return nil, err
	}
	info, err := fh.Stat()
	if err == nil && (info.Size() != f.Size || strconv.FormatInt(info.ModTime().UnixNano(), 10) != f.Version) {
		err = fmt.Errorf("%s changed since it was listed", f.Name)
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fh, nil
}

// finish moves f (and its .done marker) into done/, or into failed/ beside
// a <name>.reason file that says why. A file already moved is not an error.
func (s *dirSource) finish(_ context.Context, f file, state, reason string) error {
	sub := doneDir
	if state == stateFailed {
		sub = failedDir
	}
	to := filepath.Join(s.dir, sub)
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	if state == stateFailed {
		if err := os.WriteFile(filepath.Join(to, f.Name+reasonSuffix), []byte(reason+"\n"), 0o644); err != nil {
			return err
		}
	}
	for _, name := range []string{f.Name, f.Name + doneSuffix} {
		err := os.Rename(filepath.Join(s.dir, name), filepath.Join(to, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	delete(s.seen, f.Name)
	return nil
}

func (s *dirSource) wait(ctx context.Context, d time.Duration) {
	if d <= 0 || d > s.rescan {
		d = s.rescan
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if s.events != nil {
		events, errs = s.events.Events, s.events.Errors
	}
	select {
	case <-ctx.Done():
		return
	case <-t.C:
		return
	case err := <-errs:
		s.log.Warn("file system events", "dir", s.dir, "err", err)
		return
	case <-events:
	}
	// A burst of events (a file being written) is one wake-up: wait for it
	// to pause briefly before listing.
	quiet := time.NewTimer(50 * time.Millisecond)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-quiet.C:
			return
		}
	}
}

func (s *dirSource) close() error {
	if s.events == nil {
		return nil
	}
	return s.events.Close()
}
