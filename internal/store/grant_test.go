package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/testenv"
)

var roleSeq atomic.Int64

// newRole creates a LOGIN role with no privileges, whose name needs quoting,
// and returns its name and a DSN that logs in as it (the test cluster
// trusts local logins). It is dropped, with its grants, when t ends.
func newRole(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf(`Reader "%d-%d"`, os.Getpid(), roleSeq.Add(1))
	admin := testenv.Conn(t)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), testenv.PostgresDSN(t))
		if err != nil {
			t.Logf("dropping role %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		q := pgx.Identifier{name}.Sanitize()
		if _, err := conn.Exec(context.Background(), "DROP OWNED BY "+q+"; DROP ROLE "+q); err != nil {
			t.Logf("dropping role %s: %v", name, err)
		}
	})
	u, err := url.Parse(testenv.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	return name, u.String()
}

// TestGrantReadIsReadOnly: a role granted GrantRead's access, and nothing
// else, serves the API's reads through OpenRead, reads users,
// organizations and the user raw log (the browsing endpoints), and cannot
// write anything, nor read the offsets, the organization raw log or the
// outbox: each is insufficient_privilege (42501). As a positive control,
// every refused statement succeeds for the owner (rolled back), so a 42501
// can only come from the missing privilege.
func TestGrantReadIsReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := setup(t)
	claim(t, st, store.TopicPartition{Topic: "u", Partition: 0})
	b := &store.Batch{UserTopic: "u", OrgTopic: "o",
		Users:   []event.User{user("u1", event.UserCreated, "Ripley", "Nostromo", t0, 0, 0)},
		Orgs:    []event.Org{org("Nostromo", "gold", t0, 0, 0)},
		Offsets: []store.OffsetAdvance{adv("u", 0, nil, 1)}}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	role, dsn := newRole(t)
	if err := st.GrantRead(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := st.GrantRead(ctx, role); err != nil {
		t.Fatalf("granting twice: %v", err)
	}

	rd, err := store.OpenRead(ctx, store.Config{DSN: dsn, Schema: st.Schema()}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := rd.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := rd.UsersByNames(ctx, []string{"Ripley"}, 10)
	if err != nil {
		t.Fatalf("reading as %s: %v", role, err)
	}
	if got := ps["Ripley"]; len(got) != 1 || deref(got[0].OrganizationTier) != "gold" {
		t.Fatalf("UsersByNames as %s = %+v, want Ripley with tier gold", role, ps)
	}
	if v, err := rd.SchemaVersion(ctx); err != nil || v != store.LatestMigration() {
		t.Fatalf("SchemaVersion as %s = %d, %v; want %d", role, v, err, store.LatestMigration())
	}

	reader, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	// What the API's other reads need (by id, history, organizations,
	// activity).
	for _, table := range []string{"users", "organizations", "user_events", "org_activity"} {
		if _, err := reader.Exec(ctx, "SELECT * FROM "+pgx.Identifier{st.Schema(), table}.Sanitize()+" LIMIT 1"); err != nil {
			t.Errorf("as %s: reading %s: %v", role, table, err)
		}
	}
	owner := testenv.Conn(t)
	s := pgx.Identifier{st.Schema()}.Sanitize()
	for _, stmt := range []string{
		"INSERT INTO " + s + ".users (id, username, received_at, deleted, event_type, source_partition, source_offset) VALUES ('x', 'x', now(), false, 'User Created', 0, 0)",
		"UPDATE " + s + ".users SET username = 'x'",
		"DELETE FROM " + s + ".users",
		"INSERT INTO " + s + ".kafka_offsets (topic, partition, next_offset) VALUES ('x', 0, 0)",
		"UPDATE " + s + ".kafka_offsets SET next_offset = 0",
		"UPDATE " + s + ".organizations SET organization_tier = 'x'",
		"INSERT INTO " + s + ".user_events (topic, partition, \"offset\", id, event_type, received_at, kafka_timestamp) VALUES ('x', 0, 0, 'x', 'User Created', now(), now())",
		"SELECT * FROM " + s + ".org_events",
		"SELECT * FROM " + s + ".kafka_offsets",
		"SELECT * FROM " + s + ".changelog_outbox",
		"SELECT * FROM " + s + ".enriched_pending",
		"SELECT * FROM " + s + ".org_activity_users",
		"UPDATE " + s + ".org_activity SET final = true",
		"INSERT INTO " + s + ".schema_migrations (version, name) VALUES (100000, 'x')",
		"CREATE TABLE " + s + ".mine (x int)",
	} {
		_, err := reader.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.InsufficientPrivilege {
			t.Errorf("as %s: %.70s: %v, want SQLSTATE 42501", role, stmt, err)
		}
		err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Errorf("as the owner: %.70s: %v (the statement must be valid for its 42501 to mean anything)", stmt, err)
		}
	}
}

var errRollback = errors.New("rollback")

// TestGrantReadUnknownRole: granting to a role that does not exist fails
// with PostgreSQL's undefined_object.
func TestGrantReadUnknownRole(t *testing.T) {
	t.Parallel()
	st := setup(t)
	err := st.GrantRead(context.Background(), "no such role")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.UndefinedObject {
		t.Fatalf("GrantRead(unknown role) = %v, want SQLSTATE 42704", err)
	}
}
