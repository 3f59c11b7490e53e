package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type rec struct {
	value   []byte
	invalid bool
	// parsed fields, for the oracle (valid records only)
	id, typ, username, email, userType, org string
	at                                      time.Time
	orgName, tier                           string
	// where it landed
	partition int32
	offset    int64
}

var rank = map[string]int{"User Created": 0, "User Updated": 1, "User Deleted": 2}

// workload makes user and org events with many ties, out-of-order arrival,
// duplicates and invalid records. It knows which records are invalid by
// construction, not by running the decoder.
func workload(seed uint64, nUsers, nEvents, nOrgs, nOrgEvents int) (users, orgs []*rec) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	base := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	when := func() time.Time { return base.Add(time.Duration(r.IntN(60)) * time.Minute) }
	orgName := func() string { return fmt.Sprintf("org-%d", r.IntN(nOrgs+3)) } // some orgs never arrive
	types := []string{"User Created", "User Updated", "User Deleted"}
	for i := 0; i < nEvents; i++ {
		if r.IntN(100) < 3 {
			bad := []string{
				`{"id":"x","event_type":"User Created","username":"","received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x","event_type":"User Exploded","username":"a","received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x","event_type":"User Created","username":"a","received_at":"not a time"}`,
				`{"id":"x","event_type":"User Created","username":5,"received_at":"2021-03-01 00:00:00"}`,
				`{"id":"x",`,
				`[]`,
			}
			users = append(users, &rec{value: []byte(bad[r.IntN(len(bad))]), invalid: true})
			continue
		}
		id := fmt.Sprintf("user-%d", r.IntN(nUsers))
		u := &rec{id: id, typ: types[r.IntN(3)], username: fmt.Sprintf("name-%d", r.IntN(nUsers/2)), // shared names
			email: fmt.Sprintf("%s-%d@example.com", id, i), userType: []string{"Admin", "User", "Creator"}[r.IntN(3)],
			org: orgName(), at: when()}
		u.value, _ = json.Marshal(map[string]any{
			"id": u.id, "event_type": u.typ, "username": u.username, "user_email": u.email,
			"user_type": u.userType, "organization_name": u.org, "received_at": u.at.Format("2006-01-02 15:04:05.000000"),
		})
		users = append(users, u)
		if r.IntN(100) < 2 { // an exact duplicate
			dup := *u
			users = append(users, &dup)
		}
	}
	for i := 0; i < nOrgEvents; i++ {
		if r.IntN(100) < 3 {
			orgs = append(orgs, &rec{value: []byte(`{"organization_key":"k","created_at":"2021-03-01 00:00:00"}`), invalid: true})
			continue
		}
		o := &rec{orgName: fmt.Sprintf("org-%d", r.IntN(nOrgs)), tier: []string{"gold", "silver", "bronze"}[r.IntN(3)], at: when()}
		o.value, _ = json.Marshal(map[string]any{"organization_key": "k-" + o.orgName, "organization_name": o.orgName, "organization_tier": o.tier, "created_at": o.at.Format(time.RFC3339)})
		orgs = append(orgs, o)
	}
	r.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	r.Shuffle(len(orgs), func(i, j int) { orgs[i], orgs[j] = orgs[j], orgs[i] })
	return users, orgs
}

// produce sends the records keyed by event time, as the seed does, so one
// user's events land on different partitions, and records where each landed.
func produce(t *testing.T, broker, topic string, recs []*rec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.at.String() + strconv.Itoa(i%7)), Value: r.value}
	}
	res := cl.ProduceSync(context.Background(), krs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, kr := range krs {
		recs[i].partition, recs[i].offset = kr.Partition, kr.Offset
	}
}

type userState struct {
	Deleted                                 bool
	EventType                               string
	ReceivedAt                              time.Time
	Username, Email, UserType, Organization *string
}

// oracle computes the expected users and organizations by sorting each key's
// valid events by (time, type precedence, partition, offset) and taking the
// last. Fields of a live user come from its winning event.
func oracle(users, orgs []*rec) (map[string]userState, map[string]string) {
	byID := map[string][]*rec{}
	for _, u := range users {
		if !u.invalid {
			byID[u.id] = append(byID[u.id], u)
		}
	}
	wantUsers := map[string]userState{}
	for id, evs := range byID {
		sort.Slice(evs, func(i, j int) bool {
			a, b := evs[i], evs[j]
			if !a.at.Equal(b.at) {
				return a.at.Before(b.at)
			}
			if rank[a.typ] != rank[b.typ] {
				return rank[a.typ] < rank[b.typ]
			}
			if a.partition != b.partition {
				return a.partition < b.partition
			}
			return a.offset < b.offset
		})
		w := evs[len(evs)-1]
		s := userState{Deleted: w.typ == "User Deleted", EventType: w.typ, ReceivedAt: w.at}
		if !s.Deleted {
			s.Username, s.Email, s.UserType, s.Organization = &w.username, &w.email, &w.userType, &w.org
		}
		wantUsers[id] = s
	}
	best := map[string]*rec{}
	for _, o := range orgs {
		if o.invalid {
			continue
		}
		b := best[o.orgName]
		if b == nil || o.at.After(b.at) || (o.at.Equal(b.at) && (o.partition > b.partition || o.partition == b.partition && o.offset > b.offset)) {
			best[o.orgName] = o
		}
	}
	wantOrgs := map[string]string{}
	for name, o := range best {
		wantOrgs[name] = o.tier
	}
	return wantUsers, wantOrgs
}
