// Package workload generates realistic user and organization event streams,
// and knows, from how it generated them, the state that a correct pipeline
// must end in. The chaos tests, `streamjoin gen` and `streamjoin bench` all
// use it.
//
// The expected state (the oracle) is computed from the generator's own
// record of what each event means, never by decoding the JSON, so it is
// independent of the code under test.
//
// A Generator is not safe for concurrent use.
package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Config sets the shape of a stream. Zero fields take the defaults of
// WithDefaults; Validate names the first bad setting by its flag.
type Config struct {
	// Users and Orgs are how many distinct users and organizations events
	// refer to. Defaults 100,000 and 10,000.
	Users int
	Orgs  int
	// Events is how many user events to generate, invalid and duplicate
	// records included. Default 1,000,000.
	Events int
	// OrgEvents is how many organization events to generate, invalid and
	// duplicate records included. Default: DefaultOrgEvents(Orgs, Events),
	// which stays small when Events is.
	OrgEvents int
	// OutOfOrder is the fraction of events that arrive late: after events
	// with a newer event time. Default 0.05.
	OutOfOrder float64
	// Duplicates is the fraction of records that repeat an earlier record
	// exactly. Default 0.01.
	Duplicates float64
	// Invalid is the fraction of each stream's records (user events and
	// organization events alike) that are not valid events. Default 0.005.
	Invalid float64
	// KeyBy picks the record key: "time" (the event time, as the seed
	// does, so one user's events spread over partitions) or "user" (the
	// user id, or the organization key). Default "time".
	KeyBy string
	// Seed makes the stream reproducible. Default 1.
	Seed uint64
	// Start is the event time of the first event; events are 1ms apart.
	// Default 2021-03-01T00:00:00Z.
	Start time.Time
}

// Defaults.
const (
	DefaultUsers      = 100_000
	DefaultOrgs       = 10_000
	DefaultEvents     = 1_000_000
	DefaultOutOfOrder = 0.05
	DefaultDuplicates = 0.01
	DefaultInvalid    = 0.005
)

// DefaultOrgEvents is how many organization events go with events user
// events among orgs organizations: one per 50 user events (at least one),
// and never more than one per organization plus one per 100 user events.
// At the default scale (1,000,000 events, 10,000 organizations) that is
// 20,000; for 1,000 user events, 20.
func DefaultOrgEvents(orgs, events int) int {
	return min(orgs+events/100, max(1, events/50))
}

// WithDefaults returns c with zero fields set to their defaults. Fractions
// are left alone if any of them is set, so that 0 can be asked for.
func (c Config) WithDefaults() Config {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Orgs == 0 {
		c.Orgs = DefaultOrgs
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.OrgEvents == 0 {
		c.OrgEvents = DefaultOrgEvents(c.Orgs, c.Events)
	}
	if c.KeyBy == "" {
		c.KeyBy = "time"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2021, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Users < 1:
		return fmt.Errorf("users %d: must be at least 1", c.Users)
	case c.Orgs < 1:
		return fmt.Errorf("orgs %d: must be at least 1", c.Orgs)
	case c.Events < 0:
		return fmt.Errorf("events %d: must not be negative", c.Events)
	case c.OrgEvents < 0:
		return fmt.Errorf("org-events %d: must not be negative", c.OrgEvents)
	case c.KeyBy != "time" && c.KeyBy != "user":
		return fmt.Errorf("key-by %q: must be time or user", c.KeyBy)
	}
	for name, f := range map[string]float64{"out-of-order": c.OutOfOrder, "duplicates": c.Duplicates, "invalid": c.Invalid} {
		if f < 0 || f > 1 || f != f {
			return fmt.Errorf("%s %v: must be a fraction between 0 and 1", name, f)
		}
	}
	if c.Duplicates+c.Invalid >= 1 {
		return errors.New("duplicates + invalid must be below 1")
	}
	return nil
}

// Kind says which topic a record belongs to.
type Kind uint8

// The kinds.
const (
	UserEvent Kind = iota
	OrgEvent
)

// Record is one generated Kafka record.
type Record struct {
	Kind  Kind
	Key   []byte
	Value []byte // nil for a null value
	// Invalid records must end in the dead-letter topic.
	Invalid bool
	// Duplicate records repeat an earlier record exactly.
	Duplicate bool
	// Time is the event time of a valid record.
	Time time.Time
}

// UserState is a user's expected row.
type UserState struct {
	Deleted    bool
	EventType  string
	ReceivedAt time.Time
	// The fields of the winning event; empty for a deleted user.
	Username, Email, UserType, Organization string
}

// Expected is the state a correct pipeline ends in, with counts of what it
// should have accepted and rejected.
type Expected struct {
	Users map[string]UserState
	// Orgs maps organization_name to organization_tier.
	Orgs map[string]string
	// Valid and Invalid count records per kind, duplicates included.
	Valid, Invalid [2]int
}

// Generator produces a stream record by record; see New.
type Generator struct {
	cfg     Config
	r       *rand.Rand
	step    int // event-time clock, one per valid event
	emitted [2]int
	total   [2]int
	late    []delayed // held-back events, released in order of due
	last    [2]*Record
	userSt  []uint8 // 0 unknown, 1 live, 2 deleted, as generated (in event time)
	want    Expected
}

type delayed struct {
	due int
	rec Record
}

// New returns a generator for cfg, which must be valid after WithDefaults.
func New(cfg Config) (*Generator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Generator{
		cfg:    cfg,
		r:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		total:  [2]int{cfg.Events, cfg.OrgEvents},
		userSt: make([]uint8, cfg.Users),
		want:   Expected{Users: make(map[string]UserState), Orgs: make(map[string]string)},
	}, nil
}

// Config returns the generator's configuration, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Next returns the next record, or false when the stream is done.
func (g *Generator) Next() (Record, bool) {
	left := [2]int{g.total[0] - g.emitted[0], g.total[1] - g.emitted[1]}
	if left[0]+left[1] == 0 {
		return Record{}, false
	}
	// Spread org events evenly through the user events.
	kind := UserEvent
	if left[1] > 0 && (left[0] == 0 || g.r.IntN(left[0]+left[1]) < left[1]) {
		kind = OrgEvent
	}
	g.emitted[kind]++

	// A held-back event whose time has come goes first.
	if len(g.late) > 0 && g.late[0].due <= g.step && g.late[0].rec.Kind == kind {
		rec := g.late[0].rec
		g.late = g.late[1:]
		return g.count(rec), true
	}
	// Drain held-back events at the end, so none is lost.
	if left[kind] <= g.pending(kind) {
		for i, d := range g.late {
			if d.rec.Kind == kind {
				g.late = append(g.late[:i], g.late[i+1:]...)
				return g.count(d.rec), true
			}
		}
	}
	x := g.r.Float64()
	switch {
	case x < g.cfg.Invalid:
		return g.count(g.invalid(kind)), true
	case x < g.cfg.Invalid+g.cfg.Duplicates && g.last[kind] != nil:
		rec := *g.last[kind]
		rec.Duplicate = true
		return g.count(rec), true
	}
	rec := g.valid(kind)
	if g.r.Float64() < g.cfg.OutOfOrder && left[kind] > g.pending(kind)+1 {
		// Arrive after up to 2,000 newer events.
		g.late = insertDelayed(g.late, delayed{due: g.step + 1 + g.r.IntN(2000), rec: rec})
		g.emitted[kind]-- // this slot is taken by the next record instead
		return g.Next()
	}
	return g.count(rec), true
}

func (g *Generator) pending(kind Kind) int {
	n := 0
	for _, d := range g.late {
		if d.rec.Kind == kind {
			n++
		}
	}
	return n
}

func insertDelayed(ds []delayed, d delayed) []delayed {
	i := len(ds)
	for i > 0 && ds[i-1].due > d.due {
		i--
	}
	ds = append(ds, delayed{})
	copy(ds[i+1:], ds[i:])
	ds[i] = d
	return ds
}

func (g *Generator) count(rec Record) Record {
	if rec.Invalid {
		g.want.Invalid[rec.Kind]++
	} else {
		g.want.Valid[rec.Kind]++
		if !rec.Duplicate {
			cp := rec
			g.last[rec.Kind] = &cp
		}
	}
	return rec
}

// Expected returns the state the records generated so far must produce. Call
// it once Next has returned false; the map is the generator's own.
func (g *Generator) Expected() Expected { return g.want }

const seedLayout = "2006-01-02 15:04:05.000000"

func (g *Generator) tick() time.Time {
	g.step++
	return g.cfg.Start.Add(time.Duration(g.step) * time.Millisecond)
}

var (
	userTypes = []string{"Admin", "User", "Creator", "Moderator"}
	tiers     = []string{"free", "pro", "enterprise"}
)

// UserID and Username name user i; OrgName names organization i.
func UserID(i int) string   { return "u-" + strconv.Itoa(i) }
func Username(i int) string { return "user" + strconv.Itoa(i) }
func OrgName(i int) string  { return "org-" + strconv.Itoa(i) }

func (g *Generator) valid(kind Kind) Record {
	at := g.tick()
	ts := at.Format(seedLayout)
	if kind == OrgEvent {
		o := g.r.IntN(g.cfg.Orgs)
		name, tier := OrgName(o), tiers[g.r.IntN(len(tiers))]
		key := "ok-" + strconv.Itoa(o)
		v := `{"organization_key":"` + key + `","organization_name":"` + name + `","organization_tier":"` + tier + `","created_at":"` + ts + `"}`
		// Event times are unique, so the newest event wins outright.
		g.want.Orgs[name] = tier
		return Record{Kind: OrgEvent, Key: g.key(key, ts), Value: []byte(v), Time: at}
	}
	u := g.r.IntN(g.cfg.Users)
	typ := "User Updated"
	switch {
	case g.userSt[u] != 1:
		typ = "User Created"
		g.userSt[u] = 1
	case g.r.IntN(20) == 0:
		typ = "User Deleted"
		g.userSt[u] = 2
	}
	id := UserID(u)
	st := UserState{EventType: typ, ReceivedAt: at, Deleted: typ == "User Deleted"}
	var v string
	if st.Deleted {
		v = `{"id":"` + id + `","event_type":"User Deleted","username":"` + Username(u) + `","user_email":null,"user_type":null,"organization_name":null,"received_at":"` + ts + `"}`
	} else {
		st.Username = Username(u)
		st.Email = st.Username + "+" + strconv.Itoa(g.step) + "@example.com"
		st.UserType = userTypes[g.r.IntN(len(userTypes))]
		st.Organization = OrgName(g.r.IntN(g.cfg.Orgs))
		v = `{"id":"` + id + `","event_type":"` + typ + `","username":"` + st.Username + `","user_email":"` + st.Email +
			`","user_type":"` + st.UserType + `","organization_name":"` + st.Organization + `","received_at":"` + ts + `"}`
	}
	g.want.Users[id] = st
	return Record{Kind: UserEvent, Key: g.key(id, ts), Value: []byte(v), Time: at}
}

func (g *Generator) key(entity, ts string) []byte {
	if g.cfg.KeyBy == "user" {
		return []byte(entity)
	}
	return []byte(ts)
}

// Invalid user and organization values: each must be rejected.
var (
	badUsers = []string{
		`{"id":"x","event_type":"User Created","username":"a"`, // truncated
		`[{"id":"x"}]`,   // array
		`"User Created"`, // scalar
		`{"id":"x","event_type":"User Created","username":"","received_at":"2021-03-01 00:00:00"}`, // empty name
		`{"id":"x","event_type":"User Exploded","username":"a","received_at":"2021-03-01 00:00:00"}`,
		`{"id":"x","event_type":"User Created","username":"a","received_at":"yesterday"}`,
		`{"id":7,"event_type":"User Created","username":"a","received_at":"2021-03-01 00:00:00"}`,
		`{"event_type":"User Updated","username":"a","received_at":"2021-03-01 00:00:00"}`,
		"{\"id\":\"x\",\"event_type\":\"User Created\",\"username\":\"\xff\",\"received_at\":\"2021-03-01 00:00:00\"}",
		"", // null value
	}
	badOrgs = []string{
		`{"organization_key":"k","created_at":"2021-03-01 00:00:00"}`,
		`{"organization_key":"k","organization_name":"o","created_at":"13/13/2021"}`,
		`{"organization_name":["o"],"created_at":"2021-03-01 00:00:00"}`,
		`null`,
	}
)

func (g *Generator) invalid(kind Kind) Record {
	bad := badUsers
	if kind == OrgEvent {
		bad = badOrgs
	}
	v := bad[g.r.IntN(len(bad))]
	rec := Record{Kind: kind, Invalid: true, Key: []byte("invalid-" + strconv.Itoa(g.r.IntN(1000)))}
	if v != "" {
		rec.Value = []byte(v)
	}
	return rec
}
