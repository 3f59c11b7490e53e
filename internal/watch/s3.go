package watch

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Source offers the objects under an S3 prefix (recursively), listed every
// PollInterval. A PUT is atomic, so a listed object is whole; with
// CompleteDone it also waits for a <key>.done object. Objects are never
// moved or deleted: the manifest alone says which are done or failed.
//
// Credentials come from the environment, as the AWS and MinIO tools read
// them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD); without any, requests are anonymous.
type s3Source struct {
	client *minio.Client
	bucket string
	prefix string
	rule   string
	temp   []string
	poll   time.Duration
}

func newS3Source(cfg Config) (*s3Source, error) {
	bucket, prefix, err := parseS3URL(cfg.S3)
	if err != nil {
		return nil, fmt.Errorf("s3 %q: %w", cfg.S3, err)
	}
	client, err := minio.New(cfg.S3Endpoint, &minio.Options{
		Creds: credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{},
		}),
		Secure: !cfg.S3Insecure,
		Region: cfg.S3Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3-endpoint %q: %w", cfg.S3Endpoint, err)
	}
	return &s3Source{client: client, bucket: bucket, prefix: prefix, rule: cfg.Complete, temp: cfg.TempSuffixes, poll: cfg.PollInterval}, nil
}

func (s *s3Source) list(ctx context.Context) ([]file, time.Duration, error) {
	var (
		out   []file
		names = map[string]bool{}
	)
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, 0, fmt.Errorf("listing s3://%s/%s: %w", s.bucket, s.prefix, obj.Err)
		}
		names[obj.Key] = true
		if strings.HasSuffix(obj.Key, "/") || !takeable(obj.Key, s.temp) {
			continue
		}
		out = append(out, file{Name: obj.Key, Size: obj.Size, Version: obj.ETag})
	}
	if s.rule == CompleteDone {
		kept := out[:0]
		for _, f := range out {
			if names[f.Name+doneSuffix] {
				kept = append(kept, f)
			}
		}
		out = kept
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, 0, nil
}

// open reads the object's version that was listed: a newer one under the
// same key fails the precondition.
func (s *s3Source) open(ctx context.Context, f file) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetMatchETag(f.Version); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, f.Name, opts)
	if err != nil {
		return nil, fmt.Errorf("getting s3://%s/%s: %w", s.bucket, f.Name, err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, fmt.Errorf("getting s3://%s/%s: %w", s.bucket, f.Name, err)
	}
	return obj, nil
}

func (s *s3Source) finish(context.Context, file, string, string) error { return nil }

func (s *s3Source) wait(ctx context.Context, _ time.Duration) {
	t := time.NewTimer(s.poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (s *s3Source) close() error { return nil }
