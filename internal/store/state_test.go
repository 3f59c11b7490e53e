package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestWriteStateIsIdempotentAndOrderFree is what lets the consumer commit
// state apart from, and before, the offsets: the same events applied once in
// one batch, or shuffled into chunks with some chunks applied again (a
// replay after a crash, a zombie's late batch), leave the same winner per
// key. Tombstones' kept fields are left out: they are whatever was stored
// when the delete arrived, by design.
func TestWriteStateIsIdempotentAndOrderFree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(11, 12))
	var users []event.User
	var orgs []event.Org
	for i := range 3000 {
		at := t0.Add(time.Duration(r.IntN(40)) * time.Second) // many ties
		users = append(users, user(fmt.Sprint("u", r.IntN(150)), event.UserEventType(r.IntN(3)), fmt.Sprint("name", r.IntN(5)), fmt.Sprint("org", r.IntN(4)), at, int32(r.IntN(3)), int64(i)))
		orgs = append(orgs, org(fmt.Sprint("org", r.IntN(20)), fmt.Sprint("tier", r.IntN(3)), at, int32(r.IntN(3)), int64(i)))
	}
	once := setup(t)
	if err := once.WriteState(ctx, &store.Batch{Users: users, Orgs: orgs}); err != nil {
		t.Fatal(err)
	}
	shuffled := setup(t)
	perm := r.Perm(len(users))
	for lo := 0; lo < len(perm); {
		hi := min(lo+1+r.IntN(400), len(perm))
		b := &store.Batch{}
		for _, i := range perm[lo:hi] {
			b.Users = append(b.Users, users[i])
			b.Orgs = append(b.Orgs, orgs[i])
		}
		times := 1 + r.IntN(2) // some chunks twice
		for range times {
			if err := shuffled.WriteState(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		lo = hi
	}
	want, got := stateOf(t, once), stateOf(t, shuffled)
	if len(want) < 100 {
		t.Fatalf("only %d rows: the test proves little", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after shuffled, repeated chunks differs from one batch (-once +shuffled):\n%s", diff)
	}
}

// stateOf reads each user's and organization's winning event and, for live
// users, their fields.
func stateOf(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	s := st.Schema()
	rows, err := testenv.Conn(t).Query(context.Background(), `
		SELECT 'u:' || id, concat_ws('|', deleted, event_type, received_at, source_partition, source_offset,
		       CASE WHEN NOT deleted THEN concat_ws('|', username, user_email, user_type, organization_name) END)
		FROM `+s+`.users
		UNION ALL
		SELECT 'o:' || organization_name, concat_ws('|', organization_key, organization_tier, created_at, source_partition, source_offset)
		FROM `+s+`.organizations`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
