package event

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// mixValues is a reproducible stream of user and org values shaped like the
// README's event contract and the workload generator: mostly valid, about
// 5% with null fields, some with unicode and escapes, some invalid.
func mixValues(n int) (users, orgs [][]byte) {
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"User Created", "User Updated", "User Updated", "User Deleted"}
	userTypes := []string{"Admin", "Creator", "Viewer"}
	tiers := []string{"gold", "silver", "bronze"}
	bad := []string{
		`{"id":"x","event_type":"User Created","username":"a"`,
		`[{"id":"x"}]`,
		`{"id":"x","event_type":"User Exploded","username":"a","received_at":"2021-03-01 00:00:00"}`,
		`{"id":"x","event_type":"User Created","username":"a","received_at":"yesterday"}`,
		`{"id":7,"event_type":"User Created","username":"a","received_at":"2021-03-01 00:00:00"}`,
		`{"organization_name":["o"],"created_at":"2021-03-01 00:00:00"}`,
	}
	at := time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at = at.Add(time.Duration(r.IntN(1_000_000)) * time.Microsecond)
		ts := at.Format("2006-01-02 15:04:05.000000")
		u, o := r.IntN(100_000), r.IntN(1000)
		name, org := fmt.Sprintf("user%d", u), fmt.Sprintf("org-%d", o)
		switch k := r.IntN(100); {
		case k < 3:
			users = append(users, []byte(bad[r.IntN(len(bad))]))
			orgs = append(orgs, []byte(bad[r.IntN(len(bad))]))
			continue
		case k < 8:
			users = append(users, fmt.Appendf(nil, `{"id":"u-%d","event_type":"User Deleted","username":"%s","user_email":null,"user_type":null,"organization_name":null,"received_at":"%s"}`, u, name, ts))
			orgs = append(orgs, fmt.Appendf(nil, `{"organization_key":null,"organization_name":"%s","organization_tier":null,"created_at":"%s"}`, org, ts))
			continue
		case k < 12:
			name = fmt.Sprintf(`J\u00f6rg \"%d\" Müller`, u)
			org = fmt.Sprintf(`Société\tNº%d`, o)
		}
		users = append(users, fmt.Appendf(nil, `{"id":"u-%d","event_type":"%s","username":"%s","user_email":"%s+%d@example.com","user_type":"%s","organization_name":"%s","received_at":"%s"}`,
			u, types[i%len(types)], name, name, i, userTypes[r.IntN(len(userTypes))], org, ts))
		orgs = append(orgs, fmt.Appendf(nil, `{"organization_key":"ok-%d","organization_name":"%s","organization_tier":"%s","created_at":"%s"}`,
			o, org, tiers[r.IntN(len(tiers))], ts))
	}
	return users, orgs
}

// BenchmarkDecodeMix decodes the mix of mixValues, one user and one org
// value per iteration.
func BenchmarkDecodeMix(b *testing.B) {
	users, orgs := mixValues(1000)
	var bytes int64
	for i := range users {
		bytes += int64(len(users[i]) + len(orgs[i]))
	}
	d := NewDecoder(0)
	b.SetBytes(bytes / int64(len(users)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.User(users[i], Position{})
		d.Org(orgs[i], Position{})
		if i++; i == len(users) {
			i = 0
		}
	}
}
