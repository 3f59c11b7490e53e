package workload_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/workload"
)

func generate(t *testing.T, cfg workload.Config) ([]workload.Record, workload.Expected) {
	t.Helper()
	g, err := workload.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []workload.Record
	for {
		r, ok := g.Next()
		if !ok {
			break
		}
		recs = append(recs, r)
	}
	return recs, g.Expected()
}

func TestGeneratorShape(t *testing.T) {
	t.Parallel()
	cfg := workload.Config{Users: 500, Orgs: 50, Events: 20000, OrgEvents: 1000, OutOfOrder: 0.05, Duplicates: 0.02, Invalid: 0.01, Seed: 7}
	recs, want := generate(t, cfg)
	var n [2]int
	var invalid, dups, late int
	var newest [2]time.Time
	for _, r := range recs {
		n[r.Kind]++
		switch {
		case r.Invalid:
			invalid++
		case r.Duplicate:
			dups++
		case r.Time.Before(newest[r.Kind]):
			late++
		}
		if !r.Invalid && r.Time.After(newest[r.Kind]) {
			newest[r.Kind] = r.Time
		}
	}
	if n != [2]int{20000, 1000} {
		t.Errorf("generated %v records, want [20000 1000]", n)
	}
	total := float64(len(recs))
	for name, got := range map[string]struct{ n, want float64 }{"invalid": {float64(invalid), 0.01}, "duplicates": {float64(dups), 0.02}, "out of order": {float64(late), 0.05}} {
		if f := got.n / total; f < got.want/2 || f > got.want*2 {
			t.Errorf("%s fraction %.4f, want about %.3f", name, f, got.want)
		}
	}
	if want.Invalid[0]+want.Invalid[1] != invalid || want.Valid[0]+want.Valid[1]+invalid != len(recs) {
		t.Errorf("expected counts %v/%v disagree with the records", want.Valid, want.Invalid)
	}

	// Same seed, same stream.
	again, wantAgain := generate(t, cfg)
	if len(again) != len(recs) {
		t.Fatalf("the same seed gave %d records, then %d", len(recs), len(again))
	}
	for i := range recs {
		if string(recs[i].Key) != string(again[i].Key) || string(recs[i].Value) != string(again[i].Value) {
			t.Fatalf("the same seed gave a different record %d", i)
		}
	}
	if diff := cmp.Diff(want, wantAgain); diff != "" {
		t.Errorf("the same seed gave a different expected state (-first +second):\n%s", diff)
	}
}

// TestExpectedMatchesDecodedStream checks the generator's oracle against the
// decoder and the precedence rules: every record the generator calls valid
// decodes, every invalid one is rejected, and the newest event per key is the
// expected state.
func TestExpectedMatchesDecodedStream(t *testing.T) {
	t.Parallel()
	for _, keyBy := range []string{"time", "user"} {
		recs, want := generate(t, workload.Config{Users: 300, Orgs: 30, Events: 10000, OutOfOrder: 0.1, Duplicates: 0.05, Invalid: 0.02, KeyBy: keyBy, Seed: 3})
		dec := event.NewDecoder(event.DefaultMaxValueBytes)
		users := map[string]event.User{}
		orgs := map[string]event.Org{}
		for i, r := range recs {
			pos := event.Position{Offset: int64(i)}
			var err error
			if r.Kind == workload.UserEvent {
				var u event.User
				if u, err = dec.User(r.Value, pos); err == nil {
					if old, ok := users[u.ID]; !ok || event.NewerUser(&u, &old) {
						users[u.ID] = u
					}
				}
			} else {
				var o event.Org
				if o, err = dec.Org(r.Value, pos); err == nil {
					if old, ok := orgs[o.Name]; !ok || event.NewerOrg(&o, &old) {
						orgs[o.Name] = o
					}
				}
			}
			if (err != nil) != r.Invalid {
				t.Fatalf("record %d (%q): decode error %v, generator says invalid=%v", i, r.Value, err, r.Invalid)
			}
		}
		got := map[string]workload.UserState{}
		for id, u := range users {
			s := workload.UserState{Deleted: u.Type == event.UserDeleted, EventType: u.Type.String(), ReceivedAt: u.ReceivedAt}
			if !s.Deleted {
				s.Username, s.Email, s.UserType, s.Organization = *u.Username, *u.Email, *u.UserType, *u.OrganizationName
			}
			got[id] = s
		}
		if diff := cmp.Diff(want.Users, got); diff != "" {
			t.Errorf("key by %s: users (-expected +decoded):\n%s", keyBy, diff)
		}
		gotOrgs := map[string]string{}
		for name, o := range orgs {
			gotOrgs[name] = *o.Tier
		}
		if diff := cmp.Diff(want.Orgs, gotOrgs); diff != "" {
			t.Errorf("key by %s: orgs (-expected +decoded):\n%s", keyBy, diff)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  workload.Config
		want string
	}{
		{workload.Config{Users: -1}, "users -1: must be at least 1"},
		{workload.Config{KeyBy: "random"}, `key-by "random": must be time or user`},
		{workload.Config{Invalid: 1.5}, "invalid 1.5: must be a fraction between 0 and 1"},
		{workload.Config{Invalid: 0.5, Duplicates: 0.5}, "duplicates + invalid must be below 1"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	g, err := workload.New(workload.Config{Events: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}

// Events counts user events alone; organization events have their own
// count, whose default stays small when Events is small and is 20,000 at
// the default scale (what the benchmarks were measured with).
func TestCountsPerStream(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg            workload.Config
		users, orgEvts int
	}{
		{workload.Config{Events: 1000}, 1000, 20},
		{workload.Config{Events: 10}, 10, 1},
		{workload.Config{Events: 1000, OrgEvents: 7}, 1000, 7},
		{workload.Config{Events: 5000, Orgs: 5}, 5000, 55},
	} {
		recs, _ := generate(t, tt.cfg)
		var n [2]int
		for _, r := range recs {
			n[r.Kind]++
		}
		if n[workload.UserEvent] != tt.users || n[workload.OrgEvent] != tt.orgEvts {
			t.Errorf("%+v: %d user and %d organization events, want %d and %d", tt.cfg, n[0], n[1], tt.users, tt.orgEvts)
		}
	}
	if got := (workload.Config{}).WithDefaults().OrgEvents; got != 20_000 {
		t.Errorf("default organization events = %d, want 20,000", got)
	}
}

// Invalid is a fraction of each stream: user and organization events
// alike carry about that share of invalid records.
func TestInvalidIsAFractionOfEachStream(t *testing.T) {
	t.Parallel()
	recs, _ := generate(t, workload.Config{Users: 500, Orgs: 50, Events: 20000, OrgEvents: 4000, Invalid: 0.1, Seed: 3})
	var n, invalid [2]int
	for _, r := range recs {
		n[r.Kind]++
		if r.Invalid {
			invalid[r.Kind]++
		}
	}
	for k, name := range []string{"user", "organization"} {
		if f := float64(invalid[k]) / float64(n[k]); f < 0.085 || f > 0.115 {
			t.Errorf("%s events: %d of %d invalid (%.3f), want about 0.1", name, invalid[k], n[k], f)
		}
	}
}
