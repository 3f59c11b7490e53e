package event

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func sp(s string) *string { return &s }

func TestDecodeUser(t *testing.T) {
	t.Parallel()
	pos := Position{Partition: 2, Offset: 7}
	seedTime := time.Date(2020, 12, 8, 20, 3, 16, 759617000, time.UTC)
	tests := []struct {
		name  string
		value string
		want  User
		code  Code // "" means valid
	}{
		{
			name:  "seed create",
			value: `{"id":"069f","event_type":"User Created","username":"Snake","user_email":"snake@outerheaven.com","user_type":"Admin","organization_name":"Metal Gear Solid","received_at":"2020-12-08 20:03:16.759617"}`,
			want:  User{ID: "069f", Type: UserCreated, Username: sp("Snake"), Email: sp("snake@outerheaven.com"), UserType: sp("Admin"), OrganizationName: sp("Metal Gear Solid"), ReceivedAt: seedTime, Pos: pos},
		},
		{
			name:  "update",
			value: `{"id":"a","event_type":"User Updated","username":"x","received_at":"2020-12-08 20:03:16.759617"}`,
			want:  User{ID: "a", Type: UserUpdated, Username: sp("x"), ReceivedAt: seedTime, Pos: pos},
		},
		{
			name:  "delete with null fields",
			value: `{"id":"a","event_type":"User Deleted","username":null,"user_email":null,"user_type":null,"organization_name":null,"received_at":"2020-12-08 20:03:16.759617"}`,
			want:  User{ID: "a", Type: UserDeleted, ReceivedAt: seedTime, Pos: pos},
		},
		{
			name:  "delete with only id and time",
			value: `{"id":"a","event_type":"User Deleted","received_at":"2020-12-08 20:03:16.759617"}`,
			want:  User{ID: "a", Type: UserDeleted, ReceivedAt: seedTime, Pos: pos},
		},
		{
			name:  "seed delete with a null organization",
			value: `{"id":"8915","event_type":"User Deleted","username":"Apollo","user_email":"apollo@olympus.org","user_type":"Creator","organization_name":null,"received_at":"2020-12-11 20:03:16.759617"}`,
			want:  User{ID: "8915", Type: UserDeleted, Username: sp("Apollo"), Email: sp("apollo@olympus.org"), UserType: sp("Creator"), ReceivedAt: time.Date(2020, 12, 11, 20, 3, 16, 759617000, time.UTC), Pos: pos},
		},
		{
			name:  "RFC 3339 with zone is converted to UTC",
			value: `{"id":"a","event_type":"User Created","username":"x","received_at":"2021-03-01T18:00:00+02:00"}`,
			want:  User{ID: "a", Type: UserCreated, Username: sp("x"), ReceivedAt: time.Date(2021, 3, 1, 16, 0, 0, 0, time.UTC), Pos: pos},
		},
		{
			name:  "nanoseconds are truncated to microseconds",
			value: `{"id":"a","event_type":"User Created","username":"x","received_at":"2021-03-01T18:00:00.123456789Z"}`,
			want:  User{ID: "a", Type: UserCreated, Username: sp("x"), ReceivedAt: time.Date(2021, 3, 1, 18, 0, 0, 123456000, time.UTC), Pos: pos},
		},
		{
			name:  "seed form without fraction",
			value: `{"id":"a","event_type":"User Created","username":"x","received_at":"2021-03-01 18:00:00"}`,
			want:  User{ID: "a", Type: UserCreated, Username: sp("x"), ReceivedAt: time.Date(2021, 3, 1, 18, 0, 0, 0, time.UTC), Pos: pos},
		},
		{
			name:  "unknown fields are ignored",
			value: `{"id":"a","event_type":"User Created","username":"x","received_at":"2021-03-01 18:00:00","extra":{"deep":[1,2,3]},"n":5}`,
			want:  User{ID: "a", Type: UserCreated, Username: sp("x"), ReceivedAt: time.Date(2021, 3, 1, 18, 0, 0, 0, time.UTC), Pos: pos},
		},
		{name: "seed: empty username", value: `{"id":"bd4a","event_type":"User Created","username":"","user_email":"","user_type":"","organization_name":"Factorio","received_at":"2020-12-09 20:03:16.759617"}`, code: CodeMissingField},
		{name: "seed: null username", value: `{"id":"d457","event_type":"User Created","username":null,"user_email":"luigi@marioworld.com","user_type":"Creator","organization_name":"Super Mario","received_at":"2020-12-07 20:03:16.759617"}`, code: CodeMissingField},
		{name: "update without username", value: `{"id":"a","event_type":"User Updated","received_at":"2021-03-01 18:00:00"}`, code: CodeMissingField},
		{name: "missing id", value: `{"event_type":"User Created","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeMissingField},
		{name: "empty id", value: `{"id":"","event_type":"User Created","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeMissingField},
		{name: "null id", value: `{"id":null,"event_type":"User Deleted","received_at":"2021-03-01 18:00:00"}`, code: CodeMissingField},
		{name: "missing event type", value: `{"id":"a","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeMissingField},
		{name: "unknown event type", value: `{"id":"a","event_type":"User Renamed","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeUnknownType},
		{name: "event type is case sensitive", value: `{"id":"a","event_type":"user created","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeUnknownType},
		{name: "missing time", value: `{"id":"a","event_type":"User Created","username":"x"}`, code: CodeMissingField},
		{name: "unparseable time", value: `{"id":"a","event_type":"User Created","username":"x","received_at":"yesterday"}`, code: CodeBadTimestamp},
		{name: "impossible date", value: `{"id":"a","event_type":"User Created","username":"x","received_at":"2021-13-45 25:61:00"}`, code: CodeBadTimestamp},
		{name: "year zero is out of range", value: `{"id":"a","event_type":"User Created","username":"x","received_at":"0000-01-01 00:00:00"}`, code: CodeBadTimestamp},
		{name: "five-digit year", value: `{"id":"a","event_type":"User Created","username":"x","received_at":"10000-01-01 00:00:00"}`, code: CodeBadTimestamp},
		{name: "time is a number", value: `{"id":"a","event_type":"User Created","username":"x","received_at":1607457796}`, code: CodeWrongType},
		{name: "username is a number", value: `{"id":"a","event_type":"User Created","username":42,"received_at":"2021-03-01 18:00:00"}`, code: CodeWrongType},
		{name: "id is a number", value: `{"id":7,"event_type":"User Created","username":"x","received_at":"2021-03-01 18:00:00"}`, code: CodeWrongType},
		{name: "email is an object", value: `{"id":"a","event_type":"User Created","username":"x","user_email":{},"received_at":"2021-03-01 18:00:00"}`, code: CodeWrongType},
		{name: "malformed JSON", value: `{"id":"a",`, code: CodeMalformedJSON},
		{name: "trailing garbage", value: `{"id":"a"} x`, code: CodeMalformedJSON},
		{name: "empty value", value: ``, code: CodeMalformedJSON},
		{name: "whitespace value", value: "  \n", code: CodeMalformedJSON},
		{name: "array", value: `[{"id":"a"}]`, code: CodeNotObject},
		{name: "string", value: `"hello"`, code: CodeNotObject},
		{name: "number", value: `42`, code: CodeNotObject},
		{name: "JSON null", value: `null`, code: CodeNotObject},
		{name: "not UTF-8", value: "{\"id\":\"a\xff\",\"event_type\":\"User Created\",\"username\":\"x\",\"received_at\":\"2021-03-01 18:00:00\"}", code: CodeNotUTF8},
		{name: "deeply nested", value: `{"id":"a","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, code: CodeMalformedJSON},
	}
	d := NewDecoder(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := d.User([]byte(tt.value), pos)
			if tt.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				if e.Msg == "" {
					t.Errorf("reason has no message")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	d := NewDecoder(64)
	big := `{"id":"a","event_type":"User Created","username":"` + strings.Repeat("x", 100) + `","received_at":"2021-03-01 18:00:00"}`
	for _, tt := range []struct {
		name  string
		value []byte
		code  Code
	}{
		{"Kafka null value", nil, CodeNullValue},
		{"over the size limit", []byte(big), CodeTooLarge},
	} {
		_, err := d.User(tt.value, Position{})
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
		}
		_, err = d.Org(tt.value, Position{})
		if !errors.As(err, &e) || e.Code != tt.code {
			t.Errorf("%s (org): err = %v, want %s", tt.name, err, tt.code)
		}
	}
	// An empty but non-nil value is not a Kafka null.
	var e *Error
	if _, err := d.User([]byte{}, Position{}); !errors.As(err, &e) || e.Code != CodeMalformedJSON {
		t.Errorf("empty value: err = %v, want %s", err, CodeMalformedJSON)
	}
}

func TestDecodeOrg(t *testing.T) {
	t.Parallel()
	pos := Position{Partition: 1, Offset: 3}
	tests := []struct {
		name  string
		value string
		want  Org
		code  Code
	}{
		{
			name:  "full",
			value: `{"organization_key":"k1","organization_name":"Acme","organization_tier":"gold","created_at":"2020-12-08 20:03:16.759617"}`,
			want:  Org{Key: sp("k1"), Name: "Acme", Tier: sp("gold"), CreatedAt: time.Date(2020, 12, 8, 20, 3, 16, 759617000, time.UTC), Pos: pos},
		},
		{
			name:  "null key and tier",
			value: `{"organization_key":null,"organization_name":"Acme","organization_tier":null,"created_at":"2020-12-08T20:03:16Z"}`,
			want:  Org{Name: "Acme", CreatedAt: time.Date(2020, 12, 8, 20, 3, 16, 0, time.UTC), Pos: pos},
		},
		{name: "missing name", value: `{"organization_key":"k","organization_tier":"gold","created_at":"2020-12-08 20:03:16"}`, code: CodeMissingField},
		{name: "empty name", value: `{"organization_name":"","created_at":"2020-12-08 20:03:16"}`, code: CodeMissingField},
		{name: "missing created_at", value: `{"organization_name":"Acme"}`, code: CodeMissingField},
		{name: "bad created_at", value: `{"organization_name":"Acme","created_at":"soon"}`, code: CodeBadTimestamp},
		{name: "tier is a number", value: `{"organization_name":"Acme","organization_tier":3,"created_at":"2020-12-08 20:03:16"}`, code: CodeWrongType},
		{name: "key is a number", value: `{"organization_key":12,"organization_name":"Acme","created_at":"2020-12-08 20:03:16"}`, code: CodeWrongType},
		{name: "array", value: `[]`, code: CodeNotObject},
		{name: "malformed", value: `{"organization_name":`, code: CodeMalformedJSON},
	}
	d := NewDecoder(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := d.Org([]byte(tt.value), pos)
			if tt.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReasonTruncatesUserText(t *testing.T) {
	t.Parallel()
	// One ASCII byte first, so that the cut at 64 bytes falls inside a
	// two-byte rune and truncate must back off to the rune's start.
	long := "a" + strings.Repeat("é", 200)
	_, err := NewDecoder(0).User([]byte(`{"id":"a","event_type":"`+long+`","username":"x","received_at":"2021-03-01 18:00:00"}`), Position{})
	if err == nil {
		t.Fatal("an unknown event type was accepted")
	}
	reason := err.Error()
	if n := len(reason); n > 300 {
		t.Fatalf("reason is %d bytes, want at most 300: %q", n, reason)
	}
	if !utf8.ValidString(reason) {
		t.Errorf("truncation split a UTF-8 sequence: %q", reason)
	}
	if want := "a" + strings.Repeat("é", 31) + "…"; !strings.Contains(reason, want) {
		t.Errorf("reason %q does not quote the text's first 63 bytes and an ellipsis", reason)
	}
}
