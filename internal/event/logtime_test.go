package event_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
)

// A record's Kafka timestamp is stored beside the event; outside the years
// 0001 to 9999 it is refused (bad_timestamp) rather than handed to
// PostgreSQL, which refuses some of them and would fail the batch for good.
func TestCheckLogTime(t *testing.T) {
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{time.Date(2021, 5, 1, 10, 0, 0, 0, time.UTC), true},
		{time.UnixMilli(-1), true}, // "no timestamp" in old message formats
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.UnixMilli(1 << 62), false},
	} {
		err := event.CheckLogTime(tc.at)
		var ee *event.Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("CheckLogTime(%v) = %v, want nil", tc.at, err)
		case !tc.ok && (!errors.As(err, &ee) || ee.Code != event.CodeBadTimestamp):
			t.Errorf("CheckLogTime(%v) = %v, want a bad_timestamp *Error", tc.at, err)
		}
	}
}
