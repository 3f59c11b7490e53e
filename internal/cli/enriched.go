package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/changelog"
	"github.com/streamjoin/streamjoin/internal/store"
)

// enrichedFlags are the event-time outputs' settings (docs/event-time.md):
// the as-of join's and the windowed organization activity's.
func enrichedFlags(fs *pflag.FlagSet, c *app.Config) {
	fs.StringVar(&c.Changelog.EnrichedTopic, "enriched-topic", changelog.DefaultEnrichedTopic, "compacted topic that receives every valid user event joined to the organization version in force at its received_at, exactly once, keyed by <topic>/<partition>/<offset>, with corrections (empty: off)")
	fs.Var(&emitValue{&c.Store.EnrichedEager}, "enriched-emit", "when an enriched event goes out: wait (once the organization watermark reaches its time) or eager (at once; late versions correct it)")
	fs.DurationVar(&c.Store.AllowedLateness, "allowed-lateness", store.DefaultAllowedLateness, "an organization version this far or less behind the organization watermark corrects the enriched events it changes; an older one corrects nothing (counted in streamjoin_enriched_too_late_versions_total)")
	fs.StringVar(&c.Changelog.ActivityTopic, "activity-topic", changelog.DefaultActivityTopic, "compacted topic that receives each organization's activity per event-time window, keyed by <organization>/<window start>: when the user watermark passes its end, again for each late change within --allowed-lateness, and once more final (empty: off)")
	fs.DurationVar(&c.Store.Window, "window", store.DefaultWindow, "length of the organization activity's tumbling event-time windows, aligned on the Unix epoch (whole seconds; every writer of a schema must agree)")
	fs.DurationVar(&c.Store.WindowRetention, "window-retention", store.DefaultWindowRetention, "final activity windows that ended this long before the user watermark are deleted")
	for name, group := range map[string]string{
		"enriched-topic": groupKafka, "enriched-emit": groupIngest, "allowed-lateness": groupIngest,
		"activity-topic": groupKafka, "window": groupIngest, "window-retention": groupIngest,
	} {
		_ = fs.SetAnnotation(name, groupAnnotation, []string{group}) // the flags exist: registered above
	}
}

// emitValue is --enriched-emit: "wait" or "eager".
type emitValue struct{ eager *bool }

func (v *emitValue) String() string {
	if v.eager != nil && *v.eager {
		return "eager"
	}
	return "wait"
}

func (v *emitValue) Set(s string) error {
	switch s {
	case "wait":
		*v.eager = false
	case "eager":
		*v.eager = true
	default:
		return fmt.Errorf("%q: want wait or eager", s)
	}
	return nil
}

func (v *emitValue) Type() string { return "wait|eager" }
