package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/sample"
)

// TestReadyShowsTheWatermarks runs the sample through the whole process:
// once every partition is idle, /ready shows the user topic's watermark as
// the sample's newest valid event time minus the default out-of-orderness
// (5 s), computed here from the sample itself.
func TestReadyShowsTheWatermarks(t *testing.T) {
	t.Parallel()
	r := setup(t)
	produceAll(t, r.broker, "user_events", sample.UserEvents, "received_at")
	dec := event.NewDecoder(1 << 20)
	var newest time.Time
	for _, v := range sample.UserEvents {
		if u, err := dec.User(v, event.Position{}); err == nil && u.ReceivedAt.After(newest) {
			newest = u.ReceivedAt
		}
	}
	want := newest.Add(-5 * time.Second).UTC()
	var last string
	waitFor(t, "the user topic's watermark in /ready", func() bool {
		resp, err := http.Get(r.base + "/ready")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		var body struct {
			Watermarks []struct {
				Topic     string    `json:"topic"`
				Watermark time.Time `json:"watermark"`
				Idle      bool      `json:"idle"`
			} `json:"watermarks"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil {
			return false
		}
		for _, w := range body.Watermarks {
			if w.Topic == "user_events" && w.Idle && w.Watermark.Equal(want) {
				return true
			}
		}
		return false
	})
	t.Logf("/ready: %s", last)
}
