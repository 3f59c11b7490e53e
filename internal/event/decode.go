package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// DefaultMaxValueBytes is the default limit on a record value's size.
const DefaultMaxValueBytes = 1 << 20

// Code classifies why a record was rejected. It is stable and meant for
// machines: dashboards, alerts and `dlq replay --filter-reason`.
type Code string

// The rejection codes.
const (
	CodeNullValue     Code = "null_value"
	CodeTooLarge      Code = "too_large"
	CodeNotUTF8       Code = "not_utf8"
	CodeMalformedJSON Code = "malformed_json"
	CodeNotObject     Code = "not_object"
	CodeWrongType     Code = "wrong_type"
	CodeMissingField  Code = "missing_field"
	CodeUnknownType   Code = "unknown_event_type"
	CodeBadTimestamp  Code = "bad_timestamp"
	// CodeNULCharacter: a string field holds U+0000, which PostgreSQL's
	// text type cannot store. Left in, it would fail its batch for good.
	CodeNULCharacter Code = "nul_character"
)

// Error is a rejected record's reason. Its Error() text is what goes into the
// streamjoin.error header of the dead letter.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Msg }

func reject(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Decoder decodes and validates record values. The zero value is not ready;
// use NewDecoder. A Decoder is immutable and safe to share between goroutines.
type Decoder struct {
	maxValueBytes int
	// reference turns the fast paths off, leaving encoding/json and
	// time.Parse alone: the oracle of the differential tests.
	reference bool
}

// NewDecoder returns a Decoder that rejects values over maxValueBytes
// (DefaultMaxValueBytes when maxValueBytes <= 0).
func NewDecoder(maxValueBytes int) *Decoder {
	if maxValueBytes <= 0 {
		maxValueBytes = DefaultMaxValueBytes
	}
	return &Decoder{maxValueBytes: maxValueBytes}
}

type userJSON struct {
	ID               *string `json:"id"`
	EventType        *string `json:"event_type"`
	Username         *string `json:"username"`
	UserEmail        *string `json:"user_email"`
	UserType         *string `json:"user_type"`
	OrganizationName *string `json:"organization_name"`
	ReceivedAt       *string `json:"received_at"`
}

// userFields are userJSON's field names, in order; orgFields orgJSON's.
var (
	userFields = [...]string{"id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at"}
	orgFields  = [...]string{"organization_key", "organization_name", "organization_tier", "created_at"}
)

type orgJSON struct {
	OrganizationKey  *string `json:"organization_key"`
	OrganizationName *string `json:"organization_name"`
	OrganizationTier *string `json:"organization_tier"`
	CreatedAt        *string `json:"created_at"`
}

// User decodes a user_events value. A nil value (a Kafka tombstone) is
// rejected. On failure the error is always an *Error.
func (d *Decoder) User(value []byte, pos Position) (User, error) {
	var raw userJSON
	object, err := d.envelope(value)
	if err != nil {
		return User{}, err
	}
	fields := [...]**string{&raw.ID, &raw.EventType, &raw.Username, &raw.UserEmail, &raw.UserType, &raw.OrganizationName, &raw.ReceivedAt}
	if d.reference || !decodeFlat(object, userFields[:], fields[:]) {
		std := new(userJSON)
		if err := d.unmarshal(value, std); err != nil {
			return User{}, err
		}
		raw = *std
	}
	if mayHoldNUL(value) {
		if err := noNUL(userFields[:],
			raw.ID, raw.EventType, raw.Username, raw.UserEmail, raw.UserType, raw.OrganizationName, raw.ReceivedAt); err != nil {
			return User{}, err
		}
	}
	u := User{Pos: pos}
	if raw.ID == nil || *raw.ID == "" {
		return User{}, reject(CodeMissingField, "id is required")
	}
	u.ID = *raw.ID
	if raw.EventType == nil {
		return User{}, reject(CodeMissingField, "event_type is required")
	}
	switch *raw.EventType {
	case "User Created":
		u.Type = UserCreated
	case "User Updated":
		u.Type = UserUpdated
	case "User Deleted":
		u.Type = UserDeleted
	default:
		return User{}, reject(CodeUnknownType, "event_type %q is not one of \"User Created\", \"User Updated\", \"User Deleted\"", truncate(*raw.EventType))
	}
	t, err := d.parseTime("received_at", raw.ReceivedAt)
	if err != nil {
		return User{}, err
	}
	u.ReceivedAt = t
	if u.Type != UserDeleted && (raw.Username == nil || *raw.Username == "") {
		return User{}, reject(CodeMissingField, "username is required for %s", u.Type)
	}
	u.Username, u.Email, u.UserType, u.OrganizationName = raw.Username, raw.UserEmail, raw.UserType, raw.OrganizationName
	return u, nil
}

// Org decodes an org_events value. On failure the error is always an *Error.
func (d *Decoder) Org(value []byte, pos Position) (Org, error) {
	var raw orgJSON
	object, err := d.envelope(value)
	if err != nil {
		return Org{}, err
	}
	fields := [...]**string{&raw.OrganizationKey, &raw.OrganizationName, &raw.OrganizationTier, &raw.CreatedAt}
	if d.reference || !decodeFlat(object, orgFields[:], fields[:]) {
		std := new(orgJSON)
		if err := d.unmarshal(value, std); err != nil {
			return Org{}, err
		}
		raw = *std
	}
	if mayHoldNUL(value) {
		if err := noNUL(orgFields[:],
			raw.OrganizationKey, raw.OrganizationName, raw.OrganizationTier, raw.CreatedAt); err != nil {
			return Org{}, err
		}
	}
	if raw.OrganizationName == nil || *raw.OrganizationName == "" {
		return Org{}, reject(CodeMissingField, "organization_name is required")
	}
	t, err := d.parseTime("created_at", raw.CreatedAt)
	if err != nil {
		return Org{}, err
	}
	return Org{
		Key:       raw.OrganizationKey,
		Name:      *raw.OrganizationName,
		Tier:      raw.OrganizationTier,
		CreatedAt: t,
		Pos:       pos,
	}, nil
}

// mayHoldNUL reports whether a valid JSON value can decode to a string with
// U+0000: JSON escapes it as \u0000 (a raw NUL byte is not valid JSON). It
// keeps the per-field check off the hot path.
func mayHoldNUL(value []byte) bool { return bytes.Contains(value, []byte(`\u0000`)) }

// noNUL rejects the first of fields (named by names) that holds U+0000.
func noNUL(names []string, fields ...*string) error {
	for i, f := range fields {
		if f != nil && strings.IndexByte(*f, 0) >= 0 {
			return reject(CodeNULCharacter, "%s contains a NUL character (\\u0000), which PostgreSQL text cannot store", names[i])
		}
	}
	return nil
}

// envelope checks what comes before decoding (null, size, UTF-8, an
// object) and returns value without its leading whitespace.
func (d *Decoder) envelope(value []byte) ([]byte, error) {
	if value == nil {
		return nil, reject(CodeNullValue, "record value is null")
	}
	if len(value) > d.maxValueBytes {
		return nil, reject(CodeTooLarge, "value is %d bytes, over the limit of %d", len(value), d.maxValueBytes)
	}
	if !utf8.Valid(value) {
		return nil, reject(CodeNotUTF8, "value is not valid UTF-8")
	}
	trimmed := value[skipSpace(value, 0):]
	if len(trimmed) == 0 {
		return nil, reject(CodeMalformedJSON, "value is empty")
	}
	if trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, reject(CodeMalformedJSON, "value is not valid JSON")
		}
		return nil, reject(CodeNotObject, "value is a JSON %s, want an object", jsonKind(trimmed[0]))
	}
	return trimmed, nil
}

// unmarshal decodes value into into with encoding/json's rules and reasons:
// the slow path, for what decodeFlat is not sure of.
func (d *Decoder) unmarshal(value []byte, into any) error {
	decode := unmarshalJSON
	if d.reference {
		decode = json.Unmarshal
	}
	if err := decode(value, into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return reject(CodeWrongType, "field %s is a JSON %s, want a string", te.Field, te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return reject(CodeMalformedJSON, "invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		}
		return reject(CodeMalformedJSON, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// unmarshalJSON parses what decodeFlat leaves (wrong types, syntax errors,
// the exotic): decodeFlat takes the common records in one pass, and this,
// the older path, the rest. goccy/go-json decodes
// (about 4x faster than encoding/json here, see BENCHMARKS.md), but only
// input that encoding/json's scanner accepts reaches it, and on any error
// encoding/json decodes again: so what is accepted, and every rejection's
// reason, are encoding/json's. FuzzFastJSONMatchesStd checks that both
// decode the same.
func unmarshalJSON(value []byte, into any) error {
	if json.Valid(value) {
		if err := gojson.UnmarshalNoEscape(value, into); err == nil {
			return nil
		}
	}
	return json.Unmarshal(value, into)
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// Timestamp layouts accepted, tried in order: the seed's zone-less form (read
// as UTC), the same with a T, then RFC 3339.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
}

// CheckLogTime rejects a record's Kafka timestamp outside the years 0001 to
// 9999, which is stored beside the event (kafka_timestamp) and which a
// producer sets freely: PostgreSQL refuses some such values, which would
// fail their batch for good. The error is an *Error (bad_timestamp).
func CheckLogTime(t time.Time) error {
	if t.Before(minTime) || t.After(maxTime) {
		return reject(CodeBadTimestamp, "the record's Kafka timestamp (%d ms) is out of range (years 0001 to 9999)", t.UnixMilli())
	}
	return nil
}

// minTime and maxTime bound the accepted event times: four-digit years that
// PostgreSQL's timestamptz stores exactly.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func (d *Decoder) parseTime(field string, s *string) (time.Time, error) {
	if s == nil || *s == "" {
		return time.Time{}, reject(CodeMissingField, "%s is required", field)
	}
	t, ok := time.Time{}, false
	if !d.reference {
		t, ok = parseSeedTime(*s)
	}
	if !ok {
		t, ok = parseTimeLayouts(*s)
	}
	if !ok {
		return time.Time{}, reject(CodeBadTimestamp, "%s %q is neither \"YYYY-MM-DD HH:MM:SS[.ffffff]\" (UTC) nor RFC 3339", field, truncate(*s))
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, reject(CodeBadTimestamp, "%s %q is out of range (years 0001 to 9999)", field, truncate(*s))
	}
	return t, nil
}

// parseTimeLayouts parses s with the first of timeLayouts that fits, and
// returns it in UTC, truncated to microseconds.
func parseTimeLayouts(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// truncate shortens user-supplied text quoted in a reason.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
