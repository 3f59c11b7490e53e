package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/streamjoin/streamjoin/internal/store"
)

// Browser is what the browsing routes read (GET /users?…, /users/by-id/…,
// /organizations…). *store.Store implements it; New takes it from the
// Users it is given, and without it those routes answer 501.
type Browser interface {
	UserByID(ctx context.Context, id string) (store.User, bool, error)
	UserHistory(ctx context.Context, id string, after *store.HistoryKey, limit int) ([]store.HistoryEvent, error)
	UsersByOrganization(ctx context.Context, org, afterID string, limit int) ([]store.Profile, error)
	OrganizationByName(ctx context.Context, name string) (store.OrganizationInfo, bool, error)
	Organizations(ctx context.Context, afterName string, limit int) ([]store.Organization, error)
}

// Page sizes of the paginated routes: limit's default and maximum.
const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// usersByNameJSON is GET /users?name=…'s answer: every name asked for, with
// its live users (an empty array when it has none).
type usersByNameJSON struct {
	Users map[string][]store.Profile `json:"users"`
}

// usersPageJSON is GET /users?organization=…'s answer.
type usersPageJSON struct {
	Users      []store.Profile `json:"users"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// orgsPageJSON is GET /organizations' answer.
type orgsPageJSON struct {
	Organizations []store.Organization `json:"organizations"`
	NextCursor    string               `json:"next_cursor,omitempty"`
}

// historyJSON is GET /users/by-id/{id}/history's answer.
type historyJSON struct {
	ID         string        `json:"id"`
	Events     []historyItem `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

type historyItem struct {
	EventType        string     `json:"event_type"`
	ReceivedAt       time.Time  `json:"received_at"`
	Status           string     `json:"status"`
	Username         *string    `json:"username"`
	UserEmail        *string    `json:"user_email"`
	UserType         *string    `json:"user_type"`
	OrganizationName *string    `json:"organization_name"`
	Source           sourceJSON `json:"source"`
	KafkaTimestamp   time.Time  `json:"kafka_timestamp"`
	IngestedAt       time.Time  `json:"ingested_at"`
}

type sourceJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// checkParam reports why a name, id or organization is not one the API
// looks up, as a 400 problem; nil if it is.
func (s *Server) checkParam(what, v string) error {
	bad := func(format string, args ...any) error {
		return &problem{status: http.StatusBadRequest, detail: what + " " + fmt.Sprintf(format, args...)}
	}
	switch {
	case v == "":
		return bad("must not be empty")
	case len(v) > s.cfg.MaxNameBytes:
		return bad("is %d bytes, over the limit of %d", len(v), s.cfg.MaxNameBytes)
	case !utf8.ValidString(v):
		return bad("is not valid UTF-8")
	case containsNUL(v):
		return bad("must not contain NUL")
	}
	return nil
}

// pageLimit reads the limit query parameter.
func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultPageLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageLimit {
		return 0, &problem{status: http.StatusBadRequest, detail: fmt.Sprintf("limit %q: want a whole number from 1 to %d", v, maxPageLimit)}
	}
	return n, nil
}

// keyPage reads a keyset-paginated listing's limit and its cursor of kind
// (the last key of the page before; "" for the first page).
func keyPage(r *http.Request, kind byte) (int, string, error) {
	limit, err := pageLimit(r)
	if err != nil {
		return 0, "", err
	}
	after, err := decodeKeyCursor(kind, r.URL.Query().Get("cursor"))
	return limit, after, err
}

// browsing checks what every browsing route checks first, answering the
// request itself when it must not go on.
func (s *Server) browsing(w http.ResponseWriter, r *http.Request) bool {
	if !allowGet(w, r, s) {
		return false
	}
	switch {
	case s.browse == nil:
		s.fail(w, r, &problem{status: http.StatusNotImplemented, detail: "this server cannot browse its store"})
		return false
	case s.starting():
		s.fail(w, r, errStarting)
		return false
	}
	return true
}

// listUsers serves GET /users: by names (?name=a&name=b…) or one
// organization's users a page at a time (?organization=X&limit&cursor).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	q := r.URL.Query()
	names, orgs := q["name"], q["organization"]
	switch {
	case len(names) > 0 && len(orgs) > 0:
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "give name or organization, not both"})
	case len(names) > 0:
		if q.Has("limit") || q.Has("cursor") {
			s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "limit and cursor go with organization, not name"})
			return
		}
		s.usersByNames(w, r, names)
	case len(orgs) == 1:
		s.usersByOrganization(w, r, orgs[0])
	case len(orgs) > 1:
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "give one organization"})
	default:
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: "give name (one or more) or organization"})
	}
}

// usersByNames answers many names with one query (Users.UsersByNames):
// up to MaxResults live users per name.
func (s *Server) usersByNames(w http.ResponseWriter, r *http.Request, names []string) {
	if len(names) > s.cfg.MaxBatchNames {
		s.fail(w, r, &problem{status: http.StatusBadRequest, detail: fmt.Sprintf("%d names, over the limit of %d", len(names), s.cfg.MaxBatchNames)})
		return
	}
	out := usersByNameJSON{Users: make(map[string][]store.Profile, len(names))}
	uniq := make([]string, 0, len(names))
	for _, n := range names {
		if err := s.checkParam("name", n); err != nil {
			s.fail(w, r, err)
			return
		}
		if _, dup := out.Users[n]; !dup {
			out.Users[n] = []store.Profile{}
			uniq = append(uniq, n)
		}
	}
	found, err := s.users.UsersByNames(r.Context(), uniq, s.cfg.MaxResults)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for n, us := range found {
		if _, asked := out.Users[n]; asked {
			out.Users[n] = us
		}
	}
	s.writeAppended(w, r, func(b []byte) ([]byte, error) { return appendUsersByName(b, out.Users) })
}

func (s *Server) usersByOrganization(w http.ResponseWriter, r *http.Request, org string) {
	if err := s.checkParam("organization", org); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, after, err := keyPage(r, cursorUsersByOrg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	users, err := s.browse.UsersByOrganization(r.Context(), org, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := usersPageJSON{Users: users}
	if len(users) > limit {
		out.Users = users[:limit]
		out.NextCursor = encodeCursor(cursorUsersByOrg, []byte(users[limit-1].ID))
	}
	if out.Users == nil {
		out.Users = []store.Profile{}
	}
	s.writeAppended(w, r, func(b []byte) ([]byte, error) { return appendUsersPage(b, out) })
}

// getUserByID serves GET /users/by-id/{id}: the user, deleted or not.
func (s *Server) getUserByID(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	u, ok := s.lookupUser(w, r)
	if ok {
		s.writeCached(w, r, u)
	}
}

// lookupUser reads {id}'s user, answering the request itself (400, 404 or
// the store's error) when it returns false.
func (s *Server) lookupUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	id := r.PathValue("id")
	if err := s.checkParam("id", id); err != nil {
		s.fail(w, r, err)
		return store.User{}, false
	}
	u, found, err := s.browse.UserByID(r.Context(), id)
	switch {
	case err != nil:
		s.fail(w, r, err)
		return store.User{}, false
	case !found:
		s.fail(w, r, &problem{status: http.StatusNotFound, detail: "no user has id " + strconv.Quote(id)})
		return store.User{}, false
	}
	return u, true
}

// getUserHistory serves GET /users/by-id/{id}/history: a page of the
// user's raw events in event-time order.
func (s *Server) getUserHistory(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	limit, err := pageLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := decodeHistoryCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, ok := s.lookupUser(w, r)
	if !ok {
		return
	}
	evs, err := s.browse.UserHistory(r.Context(), u.ID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := historyJSON{ID: u.ID, Events: make([]historyItem, 0, min(len(evs), limit))}
	if len(evs) > limit {
		evs = evs[:limit]
		out.NextCursor = encodeHistoryCursor(evs[limit-1].Key)
	}
	for _, e := range evs {
		out.Events = append(out.Events, historyItem{
			EventType: e.EventType, ReceivedAt: e.Key.ReceivedAt, Status: e.Status,
			Username: e.Username, UserEmail: e.UserEmail, UserType: e.UserType, OrganizationName: e.Organization,
			Source:         sourceJSON{Topic: e.Key.Topic, Partition: e.Key.Partition, Offset: e.Key.Offset},
			KafkaTimestamp: e.KafkaTimestamp, IngestedAt: e.IngestedAt,
		})
	}
	s.writeCached(w, r, out)
}

// getOrganization serves GET /organizations/{name}.
func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := s.checkParam("name", name); err != nil {
		s.fail(w, r, err)
		return
	}
	o, found, err := s.browse.OrganizationByName(r.Context(), name)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case !found:
		s.fail(w, r, &problem{status: http.StatusNotFound, detail: "no organization is named " + strconv.Quote(name)})
	default:
		s.writeCached(w, r, o)
	}
}

// listOrganizations serves GET /organizations, a page at a time by name.
func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	if !s.browsing(w, r) {
		return
	}
	limit, after, err := keyPage(r, cursorOrgs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	orgs, err := s.browse.Organizations(r.Context(), after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := orgsPageJSON{Organizations: orgs}
	if len(orgs) > limit {
		out.Organizations = orgs[:limit]
		out.NextCursor = encodeCursor(cursorOrgs, []byte(orgs[limit-1].Name))
	}
	if out.Organizations == nil {
		out.Organizations = []store.Organization{}
	}
	s.writeCached(w, r, out)
}
