package bench

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/store"
)

// freshSchema creates an empty, migrated schema and returns a store on it.
func (b *bencher) freshSchema(ctx context.Context, name string, maxConns int) (*store.Store, error) {
	if err := b.dropSchema(ctx, name); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Config{DSN: b.dsn, Schema: name, MaxConns: int32(maxConns)}, b.quiet)
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// schemaConn creates a fresh, migrated schema and returns a connection whose
// search_path is that schema; done closes it and drops the schema.
func (b *bencher) schemaConn(ctx context.Context, name string) (conn *pgx.Conn, done func(), err error) {
	st, err := b.freshSchema(ctx, name, 1)
	if err != nil {
		return nil, nil, err
	}
	st.Close()
	if conn, err = b.conn(ctx); err == nil {
		_, err = conn.Exec(ctx, "SET search_path = "+pgx.Identifier{name}.Sanitize())
	}
	done = func() {
		if conn != nil {
			conn.Close(ctx)
		}
		_ = b.dropSchema(ctx, name)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return conn, done, nil
}

func (b *bencher) dropSchema(ctx context.Context, name string) error {
	conn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	return err
}
