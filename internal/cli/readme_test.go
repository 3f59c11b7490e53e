package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/streamjoin/streamjoin/internal/sample"
)

// The README's Quickstart stays true to the command line: the dev DSN it
// gives is dev's default port, it says how to start without reloading the
// sample and that PostgreSQL may come from apt, its kcat example does not
// print every header joined, and its table of the sample names every user
// the sample leaves live.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Quickstart")
	end := strings.Index(readme, "## Architecture")
	if start < 0 || end < start {
		t.Fatal("README has no Quickstart section before Architecture")
	}
	quick := readme[start:end]
	for _, want := range []string{
		fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", defaultDevPGPort),
		"bin/streamjoin dev    #", // without --sample
		"apt-get install",
		"dlq list --topic user_events.dlq",
		"`streamjoin version`",
		"--timeout 30s",
		"--pg-port",
	} {
		if !strings.Contains(quick, want) {
			t.Errorf("README Quickstart and commands do not say %q", want)
		}
	}
	for _, line := range strings.Split(quick, "\n") {
		if strings.Contains(line, "kcat -C") && strings.Contains(line, "%h") {
			t.Errorf("README: a kcat example prints %%h, every header joined by commas: %s", line)
		}
	}
	for _, v := range sample.UserEvents {
		var e struct {
			ID       string `json:"id"`
			Username any    `json:"username"`
		}
		if json.Unmarshal(v, &e) != nil {
			continue
		}
		name, ok := e.Username.(string)
		if !ok || name == "" || e.ID == "" || name == "Brett" || name == "Parker" {
			continue // invalid records
		}
		escaped := strings.ReplaceAll(url.PathEscape(name), "%27", "'")
		if !strings.Contains(quick, "`"+escaped+"`") {
			t.Errorf("README's sample table does not list %q (as `%s`)", name, escaped)
		}
	}
}
