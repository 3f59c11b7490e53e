package event

import (
	"reflect"
	"testing"
	"time"
)

// The fast path takes the seed's form in all its variants, and leaves every
// other form, and every out-of-range field, to time.Parse.
func TestParseSeedTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Time // zero: the fast path must refuse
	}{
		{"2020-12-08 20:03:16", time.Date(2020, 12, 8, 20, 3, 16, 0, time.UTC)},
		{"2020-12-08 20:03:16.759617", time.Date(2020, 12, 8, 20, 3, 16, 759617000, time.UTC)},
		{"2020-12-08 20:03:16.7", time.Date(2020, 12, 8, 20, 3, 16, 700000000, time.UTC)},
		{"2020-12-08 20:03:16.123456789", time.Date(2020, 12, 8, 20, 3, 16, 123456000, time.UTC)},
		{"2024-02-29 23:59:59.999999999", time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)},
		{"2000-02-29 00:00:00", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"0000-01-01 00:00:00", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, // out of range, but parsed as time.Parse does
		{"9999-12-31 23:59:59.9999999", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"2020-12-08T20:03:16", time.Time{}},
		{"2020-12-08 20:03:16Z", time.Time{}},
		{"2020-12-08 20:03:16.", time.Time{}},
		{"2020-12-08 20:03:16,5", time.Time{}},
		{"2020-12-08 20:03:16.1234567890", time.Time{}},
		{"2020-12-08 20:03:16.12a", time.Time{}},
		{"2020-12-08 2:03:16", time.Time{}},
		{"1900-02-29 00:00:00", time.Time{}},
		{"2021-02-29 00:00:00", time.Time{}},
		{"2021-04-31 00:00:00", time.Time{}},
		{"2021-00-01 00:00:00", time.Time{}},
		{"2021-13-01 00:00:00", time.Time{}},
		{"2021-01-00 00:00:00", time.Time{}},
		{"2021-01-01 24:00:00", time.Time{}},
		{"2021-01-01 00:60:00", time.Time{}},
		{"2021-01-01 00:00:60", time.Time{}},
		{"+021-01-01 00:00:00", time.Time{}},
		{"2021-01-01 00:00:0-", time.Time{}},
		{"", time.Time{}},
	} {
		got, ok := parseSeedTime(tc.in)
		if ok != !tc.want.IsZero() || got != tc.want {
			t.Errorf("parseSeedTime(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzSeedTimeMatchesParse is the differential test of the fast timestamp
// path: whatever it accepts, time.Parse accepts too and gives the identical
// time.Time, and parseTime's outcome (time, or rejection code and reason,
// range check included) is the same with and without the fast path.
func FuzzSeedTimeMatchesParse(f *testing.F) {
	for _, s := range []string{
		"2020-12-08 20:03:16.759617", "2020-12-08 20:03:16", "2020-12-08T20:03:16Z",
		"0000-01-01 00:00:00", "9999-12-31 23:59:59.9999999", "2021-02-29 00:00:00",
		"2020-12-08 2:03:16", "2020-12-08 20:03:16,5", "2020-12-08 20:03:16.1234567890",
	} {
		f.Add(s)
	}
	fast, ref := NewDecoder(0), &Decoder{maxValueBytes: DefaultMaxValueBytes, reference: true}
	f.Fuzz(func(t *testing.T, s string) {
		if got, ok := parseSeedTime(s); ok {
			want, ok := parseTimeLayouts(s)
			if !ok {
				t.Fatalf("%q: the fast path accepts %v, time.Parse rejects", s, got)
			}
			if got != want || !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: the fast path gives %#v, time.Parse %#v", s, got, want)
			}
		}
		got, errGot := fast.parseTime("received_at", &s)
		want, errWant := ref.parseTime("received_at", &s)
		if got != want || errText(errGot) != errText(errWant) {
			t.Fatalf("%q: parseTime gives %v, %v; without the fast path %v, %v", s, got, errGot, want, errWant)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// BenchmarkParseTime: the seed's form with and without the fast path.
func BenchmarkParseTime(b *testing.B) {
	s := "2020-12-08 20:03:16.759617"
	for _, bc := range []struct {
		name string
		d    *Decoder
	}{
		{"fast", NewDecoder(0)},
		{"time.Parse", &Decoder{maxValueBytes: DefaultMaxValueBytes, reference: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.d.parseTime("received_at", &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
