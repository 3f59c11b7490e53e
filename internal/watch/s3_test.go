package watch

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/streamjoin/streamjoin/internal/kafka"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

// fakeS3 starts an in-process S3 server (gofakes3, in memory) with bucket
// and returns its host:port and a client to fill it.
func fakeS3(t *testing.T, bucket string) (string, *minio.Client) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "watch-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "watch-test-secret")
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4("watch-test", "watch-test-secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return u.Host, cl
}

func putObject(t *testing.T, cl *minio.Client, bucket, key, content string) {
	t.Helper()
	if _, err := cl.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitManifest waits until the manifest has every name in want with its
// state.
func waitManifest(t *testing.T, conn *kafka.Connector, cfg Config, want map[string]string) map[string]entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := readManifest(ctx, conn, cfg.ManifestTopic, cfg.source())
		cancel()
		missing := ""
		if err != nil { // the manifest topic may not exist yet
			missing = err.Error()
		}
		for name, state := range want {
			if m[name].State != state {
				missing = name + " " + state
			}
		}
		if missing == "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the manifest did not get %s within 30s: %+v", missing, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestS3 watches a prefix of a real (in-process) S3 server: objects under
// it, in subfolders too, are produced exactly once; a temporary object and
// one outside the prefix are not taken; a bad object fails in the manifest
// with none of it produced; and a restarted watcher produces only what is
// new.
func TestS3(t *testing.T) {
	addr, conn := newBroker(t)
	endpoint, s3 := fakeS3(t, "bucket")
	cfg := testConfig("")
	cfg.Dir = ""
	cfg.S3 = "s3://bucket/in/"
	cfg.S3Endpoint = endpoint
	cfg.S3Insecure = true

	a, wantA := ndjson("a", 25)
	putObject(t, s3, "bucket", "in/a.json", a)
	_, wantB := ndjson("b", 10)
	putObject(t, s3, "bucket", "in/sub/b.json", "["+strings.Join(wantB, ",")+"]")
	bad, _ := ndjson("bad", 10)
	putObject(t, s3, "bucket", "in/bad.json", bad+"{")
	tmp, _ := ndjson("tmp", 3)
	putObject(t, s3, "bucket", "in/c.json.tmp", tmp)
	out, _ := ndjson("out", 3)
	putObject(t, s3, "bucket", "other/x.json", out)

	w, err := New(cfg, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, w)
	m := waitManifest(t, conn, cfg, map[string]string{"in/a.json": stateDone, "in/sub/b.json": stateDone, "in/bad.json": stateFailed})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m["in/bad.json"].Reason, "not a JSON array") {
		t.Errorf("in/bad.json's reason = %q", m["in/bad.json"].Reason)
	}

	// A restart: everything listed again, only z.json is new.
	z, wantZ := ndjson("z", 5)
	putObject(t, s3, "bucket", "in/z.json", z)
	w2, err := New(cfg, conn, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop2 := running(t, w2)
	waitManifest(t, conn, cfg, map[string]string{"in/z.json": stateDone})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readTopic(t, addr, testTopic), append(append(append([]string{}, wantA...), wantB...), wantZ...))
	if _, ok := manifestOf(t, conn, cfg)["in/c.json.tmp"]; ok {
		t.Error("a temporary object was taken")
	}
}
