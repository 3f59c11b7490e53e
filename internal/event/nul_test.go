package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/streamjoin/streamjoin/internal/event"
)

// U+0000 in any stored string is rejected with its own code (PostgreSQL's
// text cannot hold it, so the batch would fail for good); an escaped
// backslash followed by "u0000" is plain text and passes.
func TestNULCharacter(t *testing.T) {
	d := event.NewDecoder(0)
	for _, tc := range []struct {
		name  string
		user  bool
		value string
		field string // "" when the value is valid
	}{
		{"user id", true, `{"id":"u\u0000","event_type":"User Created","username":"a","received_at":"2021-01-01 00:00:00"}`, "id"},
		{"username", true, `{"id":"u","event_type":"User Created","username":"a\u0000b","received_at":"2021-01-01 00:00:00"}`, "username"},
		{"email of a delete", true, `{"id":"u","event_type":"User Deleted","user_email":"\u0000","received_at":"2021-01-01 00:00:00"}`, "user_email"},
		{"escaped backslash", true, `{"id":"u","event_type":"User Created","username":"a\\u0000b","received_at":"2021-01-01 00:00:00"}`, ""},
		{"unknown field", true, `{"id":"u","event_type":"User Created","username":"a","received_at":"2021-01-01 00:00:00","extra":"\u0000"}`, ""},
		{"org name", false, `{"organization_name":"o\u0000","created_at":"2021-01-01 00:00:00"}`, "organization_name"},
		{"org key", false, `{"organization_key":"\u0000","organization_name":"o","created_at":"2021-01-01 00:00:00"}`, "organization_key"},
	} {
		var err error
		if tc.user {
			_, err = d.User([]byte(tc.value), event.Position{})
		} else {
			_, err = d.Org([]byte(tc.value), event.Position{})
		}
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want it accepted", tc.name, err)
			}
			continue
		}
		var ee *event.Error
		if !errors.As(err, &ee) || ee.Code != event.CodeNULCharacter || !strings.HasPrefix(ee.Msg, tc.field+" ") {
			t.Errorf("%s: err = %v, want %s naming %s", tc.name, err, event.CodeNULCharacter, tc.field)
		}
	}
}
