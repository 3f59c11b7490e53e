package bench

import (
	"context"

	"github.com/jackc/pgx/v5"
)

var sqlDigest = query("digest")

// digest summarizes what a measurement left in a schema, so that two paths
// that must do the same work can be checked to have done it: the row count
// and an order-independent hash of the current state, of the raw logs
// (without Kafka timestamps and ingest times, which differ between paths)
// and of the stored offsets.
func (b *bencher) digest(ctx context.Context, schema string) (string, error) {
	conn, err := b.conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", err
	}
	var d string
	err = conn.QueryRow(ctx, sqlDigest).Scan(&d)
	return d, err
}
