package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// pageFixture returns a store of 40,000 live users, each fourth of which
// (u00000, u00004, …: 10,000) is in organization "Big", analyzed, as a deep
// listing would meet them.
func pageFixture(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	if _, err := st.ClaimOffsets(ctx, []store.TopicPartition{{Topic: "u", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	orgs := []string{"Big", "Other1", "Other2", "Other3"}
	us := make([]event.User, 0, 40000)
	for i := range 40000 {
		name := fmt.Sprintf("n%05d", i)
		us = append(us, event.User{ID: fmt.Sprintf("u%05d", i), Type: event.UserCreated, Username: &name, OrganizationName: &orgs[i%4], ReceivedAt: at, LogTime: at, Pos: event.Position{Offset: int64(i)}})
	}
	b := &store.Batch{UserTopic: "u", OrgTopic: "o", Users: us, Offsets: []store.OffsetAdvance{{Topic: "u", Partition: 0, Generation: 1, To: int64(len(us))}}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Conn(t).Exec(ctx, "ANALYZE "+st.Schema()+".users"); err != nil {
		t.Fatal(err)
	}
	return st
}

// pageBuffers runs users_by_org.sql under EXPLAIN (ANALYZE, BUFFERS) for a
// page of 100 after afterID, and returns the shared buffers it touched and
// the plan's text.
func pageBuffers(t testing.TB, st *store.Store, afterID string) (int, string) {
	t.Helper()
	ctx := context.Background()
	sql, err := os.ReadFile("queries/users_by_org.sql") // the statement UsersByOrganization runs
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.Conn(t)
	if _, err := conn.Exec(ctx, "SET search_path TO "+st.Schema()); err != nil {
		t.Fatal(err)
	}
	var plan []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+string(sql), "Big", afterID, 100).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &out); err != nil || len(out) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	n := func(k string) int { v, _ := out[0].Plan[k].(float64); return int(v) }
	if rows := n("Actual Rows"); rows != 100 {
		t.Fatalf("page after %q: %d rows, want 100", afterID, rows)
	}
	return n("Shared Hit Blocks") + n("Shared Read Blocks"), string(plan)
}

// TestPageCostDoesNotGrowWithDepth reads the first page of an
// organization's 10,000 users and pages deep into it: each touches as many
// buffers, because the cursor's keyset condition is an index condition (no
// OFFSET, no sort of the organization).
func TestPageCostDoesNotGrowWithDepth(t *testing.T) {
	t.Parallel()
	st := pageFixture(t)
	first, plan := pageBuffers(t, st, "")
	keyset := regexp.MustCompile(`"Index Cond": "[^"]*\(id >= `)
	indexName := regexp.MustCompile(`"Index Name": "([^"]+)"`)
	if !keyset.MatchString(plan) {
		t.Errorf("the first page's index scan does not start at the cursor: %s", plan)
	}
	for _, after := range []string{"u10000", "u30000", "u39000"} {
		deep, plan := pageBuffers(t, st, after)
		if !keyset.MatchString(plan) {
			t.Errorf("page after %s: the index scan does not start at the cursor: %s", after, plan)
		}
		// The same work as the first page: the rows of the page, each with
		// its tier lookup. Reading up to the cursor would touch thousands.
		if deep > first+first/5+4 {
			t.Errorf("page after %s touched %d buffers, the first page %d: a page's cost grows with its depth", after, deep, first)
		}
		var indexes []string
		for _, m := range indexName.FindAllStringSubmatch(plan, -1) {
			indexes = append(indexes, m[1])
		}
		t.Logf("page after %s: %d buffers (first page: %d), through %v", after, deep, first, indexes)
	}
}

// BenchmarkUsersByOrganizationPage times one page of 100 of an
// organization of 10,000 users, first and deep: the two should cost the
// same (keyset pagination).
func BenchmarkUsersByOrganizationPage(b *testing.B) {
	st := pageFixture(b)
	ctx := context.Background()
	for _, bc := range []struct{ name, after string }{{"first", ""}, {"middle", "u20000"}, {"last", "u39500"}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				ps, err := st.UsersByOrganization(ctx, "Big", bc.after, 100)
				if err != nil || len(ps) == 0 {
					b.Fatalf("%d users, %v", len(ps), err)
				}
			}
		})
	}
}
