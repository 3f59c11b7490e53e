package cli

import (
	"strings"
	"testing"
)

// A DSN fit to print keeps everything but its passwords.
func TestRedactDSN(t *testing.T) {
	const secret = "s3cr3t"
	for _, tt := range []struct {
		dsn  string
		want string // a substring the result must keep
	}{
		{"postgres://u:" + secret + "@db:5432/app?sslmode=verify-full", "postgres://u:xxxxx@db:5432/app?sslmode=verify-full"},
		{"postgresql://u@db/app?password=" + secret + "&sslpassword=" + secret, "postgresql://u@db/app?"},
		{"host=db user=u password=" + secret + " dbname=app", "host=db user=u password=xxxxx dbname=app"},
		{"password=" + secret + " host=db", "password=xxxxx host=db"},
		{"host=db password = '" + secret + " with \\' quote' sslpassword=" + secret + " dbname=app", "dbname=app"},
		{"host=db user=u dbname=app", "host=db user=u dbname=app"},
	} {
		got := redactDSN(tt.dsn)
		if strings.Contains(got, secret) || !strings.Contains(got, tt.want) {
			t.Errorf("redactDSN(%q) = %q, want no password and %q kept", tt.dsn, got, tt.want)
		}
	}
}
