package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/event"
)

// asOfAnswers is the oracle of the enriched topic: for every valid user
// event acknowledged by the broker, "<tier>@<valid from>" of the
// organization version with the greatest (created_at, partition, offset)
// at or before its received_at, "<none>" without one; computed from the
// records as produced, apart from PostgreSQL.
func asOfAnswers(users []event.User, orgs []event.Org) map[string]string {
	byName := map[string][]*event.Org{}
	for i := range orgs {
		byName[orgs[i].Name] = append(byName[orgs[i].Name], &orgs[i])
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		var best *event.Org
		if u.OrganizationName != nil {
			for _, o := range byName[*u.OrganizationName] {
				if o.CreatedAt.After(u.ReceivedAt) {
					continue
				}
				if best == nil || o.CreatedAt.After(best.CreatedAt) || (o.CreatedAt.Equal(best.CreatedAt) && o.Pos.Compare(best.Pos) > 0) {
					best = o
				}
			}
		}
		out[changelog.EnrichedKey("user_events", u.Pos.Partition, u.Pos.Offset)] = enrichedAnswer(best)
	}
	return out
}

func enrichedAnswer(o *event.Org) string {
	if o == nil {
		return "<none>"
	}
	tier := "<null>"
	if o.Tier != nil {
		tier = *o.Tier
	}
	return tier + "@" + o.CreatedAt.UTC().Format(time.RFC3339Nano)
}

// checkEnriched checks the enriched topic, once nothing is pending and the
// relay has produced the whole outbox: read read_committed from the start
// and kept last per key, it is the oracle (asOfAnswers); each key has one
// first answer and then only corrections, each changing the answer. It
// returns the outbox commit numbers the topic holds.
func (h *harness) checkEnriched(s *stream, f *figures) map[int64]bool {
	h.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left bool
		if err := h.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+h.schema+".enriched_pending) OR EXISTS (SELECT 1 FROM "+h.schema+".changelog_commits)").Scan(&left); err != nil {
			h.t.Fatal(err)
		}
		if !left {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatal("enriched events still pending, or the outbox not relayed, 2 minutes after the end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	want := asOfAnswers(s.users, s.orgs)
	s.mu.Unlock()

	type value struct {
		Tier         *string    `json:"organization_tier"`
		OrgValidFrom *time.Time `json:"org_valid_from"`
	}
	last := map[string]string{}
	commits := map[int64]bool{}
	for _, r := range h.readTopic(changelog.DefaultEnrichedTopic) {
		f.EnrichedRecords++
		key := string(r.Key)
		pos, ok := changelog.PositionOf(r)
		if !ok {
			h.t.Fatalf("enriched record %s has no position header", key)
		}
		commits[pos.Commit] = true
		var v value
		if err := json.Unmarshal(r.Value, &v); err != nil {
			h.t.Fatalf("enriched record %s: %v", key, err)
		}
		a := "<none>"
		if v.OrgValidFrom != nil {
			a = fmt.Sprintf("%s@%s", deref(v.Tier), v.OrgValidFrom.UTC().Format(time.RFC3339Nano))
		}
		correction := false
		for _, hd := range r.Headers {
			correction = correction || (hd.Key == changelog.HeaderCorrection && string(hd.Value) == "true")
		}
		prev, seen := last[key]
		switch {
		case correction:
			f.EnrichedCorrections++
			if !seen || prev == a {
				f.EnrichedDuplicated++ // a correction of nothing, or that changes nothing
			}
		case seen:
			f.EnrichedDuplicated++ // a second first answer
		}
		last[key] = a
	}
	for k, w := range want {
		if g, ok := last[k]; !ok {
			f.EnrichedMissing++
		} else if g != w {
			if f.EnrichedKeysDiffering < 5 {
				h.t.Errorf("enriched: %s is %s, the as-of join over all versions is %s", k, g, w)
			}
			f.EnrichedKeysDiffering++
		}
	}
	for k := range last {
		if _, ok := want[k]; !ok {
			f.EnrichedUnexpected++
		}
	}
	if len(want) == 0 || len(s.orgs) == 0 {
		h.t.Errorf("enriched: %d user events and %d versions: the check proves little", len(want), len(s.orgs))
	}
	if f.EnrichedMissing+f.EnrichedKeysDiffering+f.EnrichedDuplicated+f.EnrichedUnexpected > 0 {
		h.t.Errorf("enriched: %d events missing, %d differing from the as-of join, %d duplicated, %d unexpected", f.EnrichedMissing, f.EnrichedKeysDiffering, f.EnrichedDuplicated, f.EnrichedUnexpected)
	}
	return commits
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}
