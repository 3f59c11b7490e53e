package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestDirFiles: good files (NDJSON, an array, one with bad records inside)
// are produced exactly once, keyed, and moved to done/; a file that is not
// JSON goes whole to failed/ with a reason and none of it is produced, not
// even the records before the break.
func TestDirFiles(t *testing.T) {
	t.Parallel()
	addr, conn := newBroker(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.KeyField = "id"
	w, err := New(cfg, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, w)

	a, wantA := ndjson("a", 30)
	writeRenamed(t, dir, "a.json", a)
	_, wantB := ndjson("b", 20)
	writeRenamed(t, dir, "b.json", "[\n"+strings.Join(wantB, ",\n")+"\n]\n")
	wantC := []string{`{"id":"c-0"}`, `42`, `{"id":"c-2","received_at":"not a time"}`}
	writeRenamed(t, dir, "c.json", strings.Join(wantC, "\n"))
	d, _ := ndjson("d", 10)
	writeRenamed(t, dir, "d.json", d+`{"id":"d-10",`)

	for _, f := range []string{"done/a.json", "done/b.json", "done/c.json", "failed/d.json", "failed/d.json.reason"} {
		waitFile(t, filepath.Join(dir, f), 30*time.Second)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := readTopic(t, addr, testTopic)
	exactlyOnce(t, recs, append(append(append([]string{}, wantA...), wantB...), wantC...))
	for _, r := range recs {
		if string(r.Value) == wantA[3] && string(r.Key) != "a-3" {
			t.Errorf("record %s has key %q, want a-3", r.Value, r.Key)
		}
	}
	reason, err := os.ReadFile(filepath.Join(dir, "failed/d.json.reason"))
	if err != nil || !strings.Contains(string(reason), "not a JSON array or a stream of JSON values") {
		t.Errorf("reason file = %q, %v; want it to say the file is not JSON", reason, err)
	}
	m := manifestOf(t, conn, cfg)
	for name, want := range map[string]entry{
		"a.json": {State: stateDone, Next: 30}, "b.json": {State: stateDone, Next: 20},
		"c.json": {State: stateDone, Next: 3}, "d.json": {State: stateFailed, Next: 0},
	} {
		if got := m[name]; got.State != want.State || got.Next != want.Next {
			t.Errorf("manifest[%s] = %+v, want state %s next %d", name, got, want.State, want.Next)
		}
	}
}

// TestCompleteRules: which files a directory offers under each rule.
func TestCompleteRules(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rule    string
		files   []string // created, in this order
		want    []string // offered at once
		later   []string // offered once Settle has passed
		recheck bool     // a recheck is asked for
	}{
		{rule: CompleteRename, files: []string{"a.json", "b.json.tmp", "c.part", ".hidden", "x.json.done", "y.reason"}, want: []string{"a.json"}, later: []string{"a.json"}},
		{rule: CompleteDone, files: []string{"a.json", "b.json", "b.json.done"}, want: []string{"b.json"}, later: []string{"b.json"}},
		{rule: CompleteSettle, files: []string{"a.json", "b.json.tmp"}, want: nil, later: []string{"a.json"}, recheck: true},
	} {
		t.Run(tt.rule, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := testConfig(dir)
			cfg.Complete = tt.rule
			cfg.Settle = time.Hour
			s, err := newDirSource(cfg, testenv.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			now := time.Now()
			s.now = func() time.Time { return now }
			files, recheck, err := s.list(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := names(files); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("offered at once %v, want %v", got, tt.want)
			}
			if (recheck > 0) != tt.recheck || recheck > cfg.Settle {
				t.Errorf("recheck = %s, want one (%v) no later than Settle", recheck, tt.recheck)
			}
			now = now.Add(cfg.Settle)
			files, _, err = s.list(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := names(files); strings.Join(got, ",") != strings.Join(tt.later, ",") {
				t.Errorf("offered after Settle %v, want %v", got, tt.later)
			}
		})
	}
}

// TestSettleRestartsOnChange: a file written to again is not complete until
// it has been unchanged for Settle since the last change.
func TestSettleRestartsOnChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Complete = CompleteSettle
	cfg.Settle = time.Minute
	s, err := newDirSource(cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	now := time.Now()
	s.now = func() time.Time { return now }
	list := func() []string {
		files, _, err := s.list(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return names(files)
	}
	list()
	now = now.Add(cfg.Settle - time.Second)
	if err := os.WriteFile(path, []byte("{}\n{}\n"), 0o644); err != nil { // grows
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("offered %v right after a change", got)
	}
	now = now.Add(cfg.Settle - time.Second)
	if got := list(); len(got) != 0 {
		t.Fatalf("offered %v before Settle passed since the change", got)
	}
	now = now.Add(time.Second)
	if got := list(); len(got) != 1 {
		t.Fatalf("offered %v once Settle passed since the change, want a.json", got)
	}
}

func names(files []file) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}
