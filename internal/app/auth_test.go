package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/streamjoin/streamjoin/internal/app"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// statusWith GETs url with "Authorization: Bearer token" and returns the
// status.
func statusWith(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSIGHUPReloadsTokenFiles runs the api role with both token files,
// rewrites them, and sends the process a real SIGHUP: the old tokens are
// refused from then on and the new ones accepted. The schema is never
// migrated, so an accepted read answers 503 "migrating": only 401 means
// refused.
func TestSIGHUPReloadsTokenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	apiFile, metricsFile := filepath.Join(dir, "api-tokens"), filepath.Join(dir, "metrics-tokens")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(apiFile, "old-api-token\n")
	write(metricsFile, "old-metrics-token\n")
	cfg := app.Config{Role: app.RoleAPI, Store: store.Config{ReadDSN: testenv.PostgresDSN(t), Schema: testenv.Schema(t)}}
	cfg.API.APITokenFile, cfg.API.MetricsTokenFile = apiFile, metricsFile
	base := start(t, cfg)

	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/users/Ripley", "old-api-token", http.StatusServiceUnavailable},
		{"/users/Ripley", "new-api-token", http.StatusUnauthorized},
		{"/health", "old-metrics-token", http.StatusOK},
		{"/health", "new-metrics-token", http.StatusUnauthorized},
	} {
		if got := statusWith(t, base+c.path, c.token); got != c.want {
			t.Errorf("before SIGHUP, %s with %s: %d, want %d", c.path, c.token, got, c.want)
		}
	}

	write(apiFile, "# rotated\nnew-api-token\n")
	write(metricsFile, "new-metrics-token\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for statusWith(t, base+"/users/Ripley", "old-api-token") != http.StatusUnauthorized ||
		statusWith(t, base+"/health", "old-metrics-token") != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the old tokens are still accepted 10s after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := statusWith(t, base+"/users/Ripley", "new-api-token"); got != http.StatusServiceUnavailable {
		t.Errorf("after SIGHUP, the new API token: %d, want 503 (accepted, still migrating)", got)
	}
	if got := statusWith(t, base+"/health", "new-metrics-token"); got != http.StatusOK {
		t.Errorf("after SIGHUP, the new metrics token: %d, want 200", got)
	}
}
