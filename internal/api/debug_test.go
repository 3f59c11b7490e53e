package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunDebugServesPprof(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The listener stays open from here on: closing it and handing
	// RunDebug the address let another socket take the port in between,
	// which failed a CI run.
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeDebug(ctx, ln, discard()) }()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/heap = %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunDebug after cancel = %v, want nil", err)
	}
}

func TestRunDebugRefusesBadAddr(t *testing.T) {
	t.Parallel()
	err := RunDebug(context.Background(), "127.0.0.1:notaport", discard())
	if err == nil || !strings.Contains(err.Error(), "debug-addr") {
		t.Fatalf("RunDebug(bad addr) = %v, want an error naming debug-addr", err)
	}
}
