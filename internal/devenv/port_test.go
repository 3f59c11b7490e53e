package devenv

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortIsBindableAndBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	lo := ephemeralLow()
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if lo > 10000 && (p < 10000 || p >= lo) {
			t.Errorf("FreePort() = %d, want a port in [10000, %d)", p, lo)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("binding FreePort()'s %d: %v", p, err)
		}
		l.Close()
	}
}
