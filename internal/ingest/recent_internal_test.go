package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/dlq"
	"github.com/streamjoin/streamjoin/internal/event"
)

// The ring keeps the last recentSize dead letters, newest first, with the
// source coordinates, code and reason dlq.Format gave them.
func TestRecentDeadLetters(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		added int
		want  []int64 // offsets, newest first
	}{
		{0, []int64{}},
		{1, []int64{0}},
		{3, []int64{2, 1, 0}},
		{recentSize, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{recentSize + 3, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3}},
	} {
		var r recentDeadLetters
		for i := range tc.added {
			src := &kgo.Record{Topic: "user_events", Partition: 2, Offset: int64(i), Value: []byte("{")}
			cause := &event.Error{Code: event.CodeMalformedJSON, Msg: fmt.Sprintf("bad %d", i)}
			r.add(dlq.Build(src, "user_events.dlq", cause), at.Add(time.Duration(i)*time.Second))
		}
		got := r.list()
		var offsets []int64
		for _, d := range got {
			offsets = append(offsets, d.Offset)
			want := DeadLetter{Topic: "user_events", Partition: 2, Offset: d.Offset, Code: "malformed_json",
				Reason: fmt.Sprintf("malformed_json: bad %d", d.Offset), At: at.Add(time.Duration(d.Offset) * time.Second)}
			if d != want {
				t.Errorf("%d added: %+v, want %+v", tc.added, d, want)
			}
		}
		if fmt.Sprint(offsets) != fmt.Sprint(tc.want) {
			t.Errorf("%d added: offsets %v, want %v", tc.added, offsets, tc.want)
		}
	}
}
