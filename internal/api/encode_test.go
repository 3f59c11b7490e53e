package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// stdEncode is what the response body was before appendProfiles: the
// reference it must match byte for byte.
func stdEncode(t testing.TB, users []store.Profile) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(users); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ptr(s string) *string { return &s }

func TestAppendProfilesMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2021, 3, 2, 10, 0, 0, 1000, time.UTC)
	tests := []struct {
		name  string
		users []store.Profile
	}{
		{"empty", []store.Profile{}},
		{"all fields", []store.Profile{{ID: "u-1", Username: "Ripley", UserEmail: ptr("r@n.space"), UserType: ptr("Admin"), OrganizationName: ptr("Nostromo"), OrganizationTier: ptr("gold"), ReceivedAt: at}}},
		{"nulls", []store.Profile{{ID: "u-2", Username: "Ash", ReceivedAt: at.Truncate(time.Second)}}},
		{"two", []store.Profile{{ID: "a", Username: "Snake", ReceivedAt: at}, {ID: "b", Username: "Snake", OrganizationTier: ptr(""), ReceivedAt: at.Add(time.Nanosecond)}}},
		{"escapes", []store.Profile{{ID: `q"\`, Username: "<b>&amp;</b>", UserEmail: ptr("tab\there\nnl\x00nul"), UserType: ptr("Zoë ✓ \u2028\u2029"), OrganizationName: ptr("bad \xff\xfe utf8"), ReceivedAt: at}}},
		{"zone", []store.Profile{{ID: "z", Username: "z", ReceivedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))}}},
		{"year 0 and 9999", []store.Profile{{ID: "y", Username: "y", ReceivedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, {ID: "y2", Username: "y", ReceivedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}}},
	}
	for _, tt := range tests {
		got, err := appendProfiles(nil, tt.users)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if want := stdEncode(t, tt.users); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, want)
		}
	}
}

// TestAppendListingsMatchEncodingJSON: GET /users?name=… and GET
// /users?organization=… are written by appenders; their bytes (and so
// their ETags) must be what writeCached wrote with encoding/json before.
func TestAppendListingsMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2021, 3, 2, 10, 0, 0, 1000, time.UTC)
	snake := []store.Profile{{ID: "a", Username: "Snake", UserEmail: ptr("s@f.ox"), ReceivedAt: at}, {ID: "b", Username: "Snake", OrganizationTier: ptr("gold"), ReceivedAt: at}}
	odd := []store.Profile{{ID: `q"\`, Username: "<b>&</b>", UserType: ptr("Zoë \u2028"), ReceivedAt: at}}
	std := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	for _, tt := range []struct {
		name  string
		users map[string][]store.Profile
	}{
		{"none", map[string][]store.Profile{}},
		{"nil map", nil},
		{"empty and found", map[string][]store.Profile{"Nobody": {}, "Snake": snake}},
		{"names in byte order", map[string][]store.Profile{"b": {}, "a": {}, "B": {}, "Zoë": {}, "zz": {}, "a b": {}, "ä": {}, "<&>": odd, `"q"`: {}, "\u2028": {}}},
		{"nil value", map[string][]store.Profile{"x": nil}},
	} {
		got, err := appendUsersByName(nil, tt.users)
		if want := std(usersByNameJSON{Users: tt.users}); err != nil || !bytes.Equal(got, want) {
			t.Errorf("by name, %s: %v\n got %s\nwant %s", tt.name, err, got, want)
		}
	}
	for _, tt := range []struct {
		name string
		page usersPageJSON
	}{
		{"empty", usersPageJSON{Users: []store.Profile{}}},
		{"nil", usersPageJSON{}},
		{"last page", usersPageJSON{Users: snake}},
		{"a cursor", usersPageJSON{Users: odd, NextCursor: "AXVwYWdlLTAwMDAwOTk"}},
		{"a cursor to escape", usersPageJSON{Users: snake, NextCursor: "<&>\""}},
	} {
		got, err := appendUsersPage(nil, tt.page)
		if want := std(tt.page); err != nil || !bytes.Equal(got, want) {
			t.Errorf("page, %s: %v\n got %s\nwant %s", tt.name, err, got, want)
		}
	}
}

func TestAppendProfilesRefusesWhatEncodingJSONRefuses(t *testing.T) {
	t.Parallel()
	users := []store.Profile{{ID: "far", Username: "x", ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if err := json.NewEncoder(&bytes.Buffer{}).Encode(users); err == nil {
		t.Fatal("encoding/json accepted year 10000; this test's premise is wrong")
	}
	if _, err := appendProfiles(nil, users); err == nil || !strings.Contains(err.Error(), "year 10000") {
		t.Errorf("appendProfiles(year 10000) error = %v, want one naming the year", err)
	}
}

func FuzzAppendProfilesMatchesEncodingJSON(f *testing.F) {
	f.Add("u-1", "Ripley", "r@n.space", "Admin", "Nostromo", "gold", int64(1614679200000001000), true)
	f.Add(`"\`, "<&>", "\x00\x1f", "\u2028", "\xff", "Zoë", int64(0), false)
	f.Fuzz(func(t *testing.T, id, name, email, typ, org, tier string, nanos int64, nulls bool) {
		p := store.Profile{ID: id, Username: name, ReceivedAt: time.Unix(0, nanos).UTC()}
		if !nulls {
			p.UserEmail, p.UserType, p.OrganizationName, p.OrganizationTier = &email, &typ, &org, &tier
		}
		users := []store.Profile{p, p}
		got, err := appendProfiles(nil, users)
		if err != nil {
			t.Fatal(err) // Unix nanoseconds stay within years 1677-2262
		}
		if want := stdEncode(t, users); !bytes.Equal(got, want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeUsers(b *testing.B) {
	at := time.Date(2021, 3, 2, 10, 0, 0, 1000, time.UTC)
	users := []store.Profile{{ID: "u-00012345", Username: "user12345", UserEmail: ptr("user12345@example.com"), UserType: ptr("Admin"), OrganizationName: ptr("org-1234"), OrganizationTier: ptr("gold"), ReceivedAt: at}}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(users)
		}
	})
	b.Run("appendProfiles", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendProfiles(buf[:0], users)
		}
	})
}
