package devenv

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestFreePortIsBindableAndBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	lo := ephemeralLow()
	// Where the kernel states its range, ephemeralLow must have read it:
	// otherwise FreePort silently falls back to ":0" and the range check
	// below would check nothing.
	inRange := false
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		want, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(strings.TrimSpace(string(b)), "\t", 2)[0]))
		if err != nil {
			t.Fatalf("ip_local_port_range %q: %v", b, err)
		}
		if lo != want {
			t.Fatalf("ephemeralLow() = %d, want %d from ip_local_port_range", lo, want)
		}
		inRange = lo > 10000
	}
	if !inRange {
		t.Logf("ephemeral range starts at %d: FreePort uses \":0\" here; only bindability is checked", lo)
	}
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if inRange && (p < 10000 || p >= lo) {
			t.Errorf("FreePort() = %d, want a port in [10000, %d)", p, lo)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("binding FreePort()'s %d: %v", p, err)
		}
		l.Close()
	}
}
