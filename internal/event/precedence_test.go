package event

import (
	"math/rand/v2"
	"testing"
	"time"
)

var base = time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)

func TestNewerUser(t *testing.T) {
	t.Parallel()
	mk := func(typ UserEventType, dt time.Duration, part int32, off int64) *User {
		return &User{ID: "x", Type: typ, ReceivedAt: base.Add(dt), Pos: Position{part, off}}
	}
	tests := []struct {
		name string
		a, b *User
		want bool
	}{
		{"later time wins", mk(UserCreated, time.Second, 0, 0), mk(UserDeleted, 0, 9, 9), true},
		{"earlier time loses", mk(UserDeleted, 0, 9, 9), mk(UserCreated, time.Second, 0, 0), false},
		{"one microsecond is enough", mk(UserCreated, time.Microsecond, 0, 0), mk(UserUpdated, 0, 0, 1), true},
		{"same time: deleted beats updated", mk(UserDeleted, 0, 0, 0), mk(UserUpdated, 0, 5, 5), true},
		{"same time: updated beats created", mk(UserUpdated, 0, 0, 0), mk(UserCreated, 0, 5, 5), true},
		{"same time: created loses to deleted", mk(UserCreated, 0, 5, 5), mk(UserDeleted, 0, 0, 0), false},
		{"same time and type: higher partition wins", mk(UserUpdated, 0, 2, 0), mk(UserUpdated, 0, 1, 100), true},
		{"same time, type, partition: higher offset wins", mk(UserUpdated, 0, 1, 7), mk(UserUpdated, 0, 1, 6), true},
		{"identical is not newer", mk(UserUpdated, 0, 1, 7), mk(UserUpdated, 0, 1, 7), false},
	}
	for _, tt := range tests {
		if got := NewerUser(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: NewerUser = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewerOrg(t *testing.T) {
	t.Parallel()
	mk := func(dt time.Duration, part int32, off int64) *Org {
		return &Org{Name: "o", CreatedAt: base.Add(dt), Pos: Position{part, off}}
	}
	if !NewerOrg(mk(time.Second, 0, 0), mk(0, 5, 5)) {
		t.Error("later created_at should win")
	}
	if !NewerOrg(mk(0, 0, 6), mk(0, 0, 5)) {
		t.Error("same time: the later record should win")
	}
	if NewerOrg(mk(0, 0, 5), mk(0, 0, 6)) {
		t.Error("same time: the earlier record should lose")
	}
}

// TestLatestUsersIsOrderIndependent checks that collapsing a batch gives the
// same winner per id whatever the order of events, and that the result is
// sorted by id: the property that makes state independent of batch
// boundaries.
func TestLatestUsersIsOrderIndependent(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var events []User
	for i := 0; i < 500; i++ {
		events = append(events, User{
			ID:         string(rune('a' + r.IntN(20))),
			Type:       UserEventType(r.IntN(3)),
			ReceivedAt: base.Add(time.Duration(r.IntN(5)) * time.Second),
			Pos:        Position{Partition: int32(r.IntN(3)), Offset: int64(i)},
		})
	}
	want := LatestUsers(events)
	for i := 1; i < len(want); i++ {
		if want[i-1].ID >= want[i].ID {
			t.Fatalf("not sorted by id at %d", i)
		}
	}
	for round := 0; round < 20; round++ {
		shuffled := append([]User(nil), events...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := LatestUsers(shuffled)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d users, want %d", round, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Pos != want[i].Pos {
				t.Fatalf("round %d: user %s won with %+v, want %+v", round, got[i].ID, got[i].Pos, want[i].Pos)
			}
		}
		// Splitting into two batches and merging their winners gives the
		// same result.
		cut := r.IntN(len(shuffled))
		merged := LatestUsers(append(LatestUsers(shuffled[:cut]), LatestUsers(shuffled[cut:])...))
		for i := range merged {
			if merged[i].Pos != want[i].Pos {
				t.Fatalf("round %d: batch split changed the winner of %s", round, merged[i].ID)
			}
		}
	}
}

func TestLatestOrgs(t *testing.T) {
	t.Parallel()
	in := []Org{
		{Name: "b", CreatedAt: base, Pos: Position{0, 1}},
		{Name: "a", CreatedAt: base.Add(time.Hour), Pos: Position{0, 2}},
		{Name: "a", CreatedAt: base, Pos: Position{0, 3}},
		{Name: "b", CreatedAt: base, Pos: Position{0, 4}},
	}
	got := LatestOrgs(in)
	if len(got) != 2 || got[0].Name != "a" || got[0].Pos.Offset != 2 || got[1].Name != "b" || got[1].Pos.Offset != 4 {
		t.Fatalf("LatestOrgs = %+v", got)
	}
}
