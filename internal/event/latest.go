package event

import (
	"cmp"
	"slices"
)

// LatestUsers returns, for each user id in us, the event that wins under
// NewerUser, sorted by id. A batch collapsed this way touches each row once,
// in a fixed order. us is not modified.
func LatestUsers(us []User) []User {
	idx := make(map[string]int, len(us))
	out := make([]User, 0, len(us))
	for i := range us {
		u := &us[i]
		if j, ok := idx[u.ID]; ok {
			if NewerUser(u, &out[j]) {
				out[j] = *u
			}
			continue
		}
		idx[u.ID] = len(out)
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// LatestOrgs returns, for each organization name in os, the event that wins
// under NewerOrg, sorted by name. os is not modified.
func LatestOrgs(os []Org) []Org {
	idx := make(map[string]int, len(os))
	out := make([]Org, 0, len(os))
	for i := range os {
		o := &os[i]
		if j, ok := idx[o.Name]; ok {
			if NewerOrg(o, &out[j]) {
				out[j] = *o
			}
			continue
		}
		idx[o.Name] = len(out)
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b Org) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
