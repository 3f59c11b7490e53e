package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/devenv"
	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// TestHTTPAnswersWhilePostgresIsDown: the API starts first. With no
// PostgreSQL to migrate, /health answers 200 (a liveness probe must not
// restart a pod that waits for its database), while /ready answers a 503
// problem that says PostgreSQL is unreachable and reads one that says the
// schema is not migrated yet; a stop ends it cleanly.
func TestHTTPAnswersWhilePostgresIsDown(t *testing.T) {
	t.Parallel()
	port, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Store: store.Config{DSN: "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?connect_timeout=1", Schema: "sj"}}
	cfg.Kafka.Brokers = []string{broker}
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, testenv.Logger(t), func(a net.Addr) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("app.Run returned before serving HTTP: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the API did not start while PostgreSQL was down")
	}
	for _, tc := range []struct {
		path   string
		status int
		detail string
	}{
		{"/health", 200, ""},
		{"/ready", 503, "postgres unreachable"},
		{"/users/Ripley", 503, "migrating"},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		var body struct {
			Detail string `json:"detail"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: decoding the body: %v", tc.path, err)
		}
		if resp.StatusCode != tc.status || !strings.Contains(body.Detail, tc.detail) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, resp.StatusCode, body.Detail, tc.status, tc.detail)
		}
		if tc.status != 200 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: Content-Type %q, want application/problem+json", tc.path, resp.Header.Get("Content-Type"))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel while waiting for PostgreSQL")
	}
}

// TestMigrationBugFailsTheStart: an error that is not a transport failure
// (here PostgreSQL refuses the schema name) ends Run with it, after HTTP
// has started, instead of being retried as an outage.
func TestMigrationBugFailsTheStart(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t)
	cfg := app.Config{Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: "pg_reserved_" + strings.ToLower(t.Name())}}
	cfg.Kafka.Brokers = []string{broker}
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listened := false
	err := app.Run(ctx, cfg, testenv.Logger(t), func(net.Addr) { listened = true })
	if ctx.Err() != nil {
		t.Fatal("Run retried a permanent migration error for 30s")
	}
	if err == nil || !listened {
		t.Fatalf("Run = %v (HTTP started: %v), want a migration error after HTTP started", err, listened)
	}
}

// TestWrongKafkaPasswordFailsTheStart: a login the brokers refuse ends Run
// with kafka.ErrAuthFailed, instead of a pipeline that retries forever.
func TestWrongKafkaPasswordFailsTheStart(t *testing.T) {
	t.Parallel()
	broker, _ := testenv.Kafka(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "streamjoin", "right"))
	cfg := app.Config{Store: store.Config{DSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.Kafka.Brokers = []string{broker}
	cfg.Kafka.SASL = kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "streamjoin", Password: "wrong"}
	cfg.API.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := app.Run(ctx, cfg, testenv.Logger(t), nil)
	if !errors.Is(err, kafka.ErrAuthFailed) {
		t.Fatalf("Run = %v, want kafka.ErrAuthFailed", err)
	}
}
