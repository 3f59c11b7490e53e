package event

import (
	"cmp"
	"slices"
)

// LatestUsers returns, for each user id in us, the event that wins under
// NewerUser, sorted by id. A batch collapsed this way touches each row once,
// in a fixed order. us is not modified.
func LatestUsers(us []User) []User {
	return latest(us, func(u *User) string { return u.ID }, NewerUser)
}

// LatestOrgs returns, for each organization name in os, the event that wins
// under NewerOrg, sorted by name. os is not modified.
func LatestOrgs(os []Org) []Org {
	return latest(os, func(o *Org) string { return o.Name }, NewerOrg)
}

// latest keeps the index of each key's winner, sorts those indexes by key
// and copies each winner once: sorting the events themselves (about 150
// bytes each) spent most of its time moving them.
func latest[T any](xs []T, key func(*T) string, newer func(a, b *T) bool) []T {
	at := make(map[string]int, len(xs)) // key → position in win
	win := make([]int32, 0, len(xs))    // the winner of each key, as an index into xs
	for i := range xs {
		k := key(&xs[i])
		if j, ok := at[k]; ok {
			if newer(&xs[i], &xs[win[j]]) {
				win[j] = int32(i)
			}
			continue
		}
		at[k] = len(win)
		win = append(win, int32(i))
	}
	slices.SortFunc(win, func(a, b int32) int { return cmp.Compare(key(&xs[a]), key(&xs[b])) })
	out := make([]T, len(win))
	for i, j := range win {
		out[i] = xs[j]
	}
	return out
}
