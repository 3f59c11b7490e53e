package devenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// server that will bind it later (a child process, or one restarted on the
// same port).
//
// It prefers ports below the kernel's ephemeral range: a port the kernel
// handed out for ":0" can be given again to an outgoing connection as its
// source port before the server binds it, and then the bind fails. Below the
// range only another explicit listener can take it. It falls back to ":0"
// when the range can't be read or no port below it is free.
func FreePort() (int, error) {
	if lo := ephemeralLow(); lo > 10000 {
		for range 50 {
			p := 10000 + rand.IntN(lo-10000)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				l.Close()
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the lowest port of Linux's ephemeral range, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}
