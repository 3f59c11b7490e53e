package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// appendProfiles appends users as json.NewEncoder(w).Encode(users) writes
// them, byte for byte (FuzzAppendProfilesMatchesEncodingJSON checks it),
// without reflection and without allocating for plain strings.
func appendProfiles(b []byte, users []store.Profile) ([]byte, error) {
	b, err := appendProfileArray(b, users)
	if err != nil {
		return b, err
	}
	return append(b, '\n'), nil
}

// appendUsersByName appends GET /users?name=…'s body as writeCached would
// write usersByNameJSON{users}: json.Marshal's bytes (names in byte order)
// and a newline. TestAppendListingsMatchEncodingJSON compares the two.
func appendUsersByName(b []byte, users map[string][]store.Profile) ([]byte, error) {
	if users == nil {
		return append(b, `{"users":null}`+"\n"...), nil
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	b = append(b, `{"users":{`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, n)
		b = append(b, ':')
		var err error
		if b, err = appendProfileArray(b, users[n]); err != nil {
			return b, err
		}
	}
	return append(b, "}}\n"...), nil
}

// appendUsersPage appends GET /users?organization=…'s body as writeCached
// would write p.
func appendUsersPage(b []byte, p usersPageJSON) ([]byte, error) {
	b = append(b, `{"users":`...)
	b, err := appendProfileArray(b, p.Users)
	if err != nil {
		return b, err
	}
	if p.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, p.NextCursor)
	}
	return append(b, "}\n"...), nil
}

// appendProfileArray appends users as json.Marshal writes them: null for
// nil, else an array.
func appendProfileArray(b []byte, users []store.Profile) ([]byte, error) {
	if users == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range users {
		p := &users[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, p.ID)
		b = append(b, `,"username":`...)
		b = appendString(b, p.Username)
		b = append(b, `,"user_email":`...)
		b = appendNullable(b, p.UserEmail)
		b = append(b, `,"user_type":`...)
		b = appendNullable(b, p.UserType)
		b = append(b, `,"organization_name":`...)
		b = appendNullable(b, p.OrganizationName)
		b = append(b, `,"organization_tier":`...)
		b = appendNullable(b, p.OrganizationTier)
		b = append(b, `,"received_at":`...)
		// time.Time.MarshalJSON's format, and its refusal of years it
		// cannot write as RFC 3339.
		if y := p.ReceivedAt.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("encoding user %q: received_at year %d is outside RFC 3339", p.ID, y)
		}
		b = append(b, '"')
		b = p.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"', '}')
	}
	return append(b, ']'), nil
}

func appendNullable(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendString quotes s. Printable ASCII that encoding/json leaves alone is
// copied; anything else (control bytes, quotes, backslashes, <, >, &, and
// all non-ASCII, including invalid UTF-8) goes through encoding/json itself,
// so its escaping rules are the ones applied.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// bufs holds response buffers; buffers that grew past maxPooledBuf are
// left to the garbage collector.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10

// writeUsers writes the 200 response of GET /users/{name} with its
// Content-Length, in one Write.
func (s *Server) writeUsers(w http.ResponseWriter, r *http.Request, users []store.Profile) {
	bp := bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			bufs.Put(bp)
		}
	}()
	b, err := appendProfiles((*bp)[:0], users)
	*bp = b[:0]
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
