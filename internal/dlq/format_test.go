package dlq

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
)

// A dead letter keeps the record and adds its reason and coordinates, which
// SourceOf and the reader give back.
func TestBuildAndRead(t *testing.T) {
	at := time.Unix(1700000000, 0)
	r := &kgo.Record{Topic: "user_events", Partition: 3, Offset: 41, Key: []byte("k"), Value: []byte("{"), Timestamp: at,
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
	for _, tc := range []struct {
		cause    error
		wantCode string
	}{
		{&event.Error{Code: event.CodeMalformedJSON, Msg: "unexpected end of JSON input"}, "malformed_json"},
		{errors.New("something else"), "unknown"},
	} {
		d := Build(r, "user_events.dlq", tc.cause)
		if d.Topic != "user_events.dlq" || d.Partition != 3 || string(d.Key) != "k" || string(d.Value) != "{" || !d.Timestamp.Equal(at) {
			t.Errorf("Build kept %s/%d key %q value %q at %v, want the record's own, on user_events.dlq/3", d.Topic, d.Partition, d.Key, d.Value, d.Timestamp)
		}
		if got := Header(d, HeaderErrorCode); got != tc.wantCode {
			t.Errorf("code = %q, want %q", got, tc.wantCode)
		}
		if got := Header(d, HeaderError); got != tc.cause.Error() {
			t.Errorf("reason = %q, want %q", got, tc.cause.Error())
		}
		src, ok := SourceOf(d)
		if want := (Source{Partition{"user_events", 3}, 41}); !ok || src != want {
			t.Errorf("SourceOf = %+v, %v; want %+v", src, ok, want)
		}
		l := parse(d)
		if l.Code != tc.wantCode || l.SourceTopic != "user_events" || l.SourcePartition != 3 || l.SourceOffset != 41 ||
			len(l.Headers) != 1 || l.Headers[0].Key != "trace" {
			t.Errorf("parse = %+v, want the reason, the source and only the original headers", l)
		}
	}
	if r.Headers[len(r.Headers)-1].Key != "trace" || len(r.Headers) != 1 {
		t.Errorf("Build changed the source record's headers: %v", r.Headers)
	}
}

func TestSourceOfRejectsForeignRecords(t *testing.T) {
	for _, hs := range [][]kgo.RecordHeader{
		nil,
		{{Key: HeaderSourceTopic, Value: []byte("t")}, {Key: HeaderSourcePartition, Value: []byte("x")}, {Key: HeaderSourceOffset, Value: []byte("1")}},
		{{Key: HeaderSourcePartition, Value: []byte("1")}, {Key: HeaderSourceOffset, Value: []byte("1")}},
	} {
		if src, ok := SourceOf(&kgo.Record{Headers: hs}); ok {
			t.Errorf("SourceOf(%v) = %+v, true; want false", hs, src)
		}
	}
}
