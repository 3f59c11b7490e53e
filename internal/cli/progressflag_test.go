package cli

import (
	"io"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/ingest"
)

// --progress-interval, the former name of --log-progress-interval, still
// works from the command line, the environment and the file; when both are
// given, the command line wins over the environment, and the new name wins
// at the same level.
//
// Not parallel: it sets environment variables.
func TestLogProgressIntervalAlias(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  []string
		want time.Duration
	}{
		{"default", nil, nil, 10 * time.Second},
		{"new name", []string{"--log-progress-interval", "3s"}, nil, 3 * time.Second},
		{"old name", []string{"--progress-interval", "5s"}, nil, 5 * time.Second},
		{"both on the command line, old first", []string{"--progress-interval", "5s", "--log-progress-interval", "3s"}, nil, 3 * time.Second},
		{"both on the command line, new first", []string{"--log-progress-interval", "3s", "--progress-interval", "5s"}, nil, 3 * time.Second},
		{"old on the command line over new from env", []string{"--progress-interval", "4s"}, []string{"STREAMJOIN_LOG_PROGRESS_INTERVAL=7s"}, 4 * time.Second},
		{"new on the command line over old from env", []string{"--log-progress-interval", "3s"}, []string{"STREAMJOIN_PROGRESS_INTERVAL=9s"}, 3 * time.Second},
		{"old from env", nil, []string{"STREAMJOIN_PROGRESS_INTERVAL=9s"}, 9 * time.Second},
		{"new from env", nil, []string{"STREAMJOIN_LOG_PROGRESS_INTERVAL=7s"}, 7 * time.Second},
		{"both from env", nil, []string{"STREAMJOIN_PROGRESS_INTERVAL=9s", "STREAMJOIN_LOG_PROGRESS_INTERVAL=7s"}, 7 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env...)
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var c ingest.Config
			ingestFlags(fs, &c)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if _, err := applyConfig(fs, ""); err != nil {
				t.Fatal(err)
			}
			if c.ProgressInterval != tt.want {
				t.Errorf("progress interval = %s, want %s", c.ProgressInterval, tt.want)
			}
		})
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c ingest.Config
	ingestFlags(fs, &c)
	if err := fs.Parse([]string{"--progress-interval", "soon"}); err == nil {
		t.Error("--progress-interval soon: no error")
	}
	if f := fs.Lookup("progress-interval"); f == nil || f.Deprecated == "" {
		t.Error("--progress-interval is not marked deprecated")
	}
}
