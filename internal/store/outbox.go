package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	sqlOutboxNext   = query("outbox_next")
	sqlOutboxDelete = query("outbox_delete")
)

// OutboxChunk is the most profiles one outbox row (a chunk) holds.
const OutboxChunk = 1000

// OutboxPosition is a place in the changelog outbox: a commit number, a
// chunk of that commit, and a profile of that chunk. The zero value is
// before the first profile.
type OutboxPosition struct {
	Commit int64
	Seq    int64 // the chunk, ordered within its commit
	Index  int   // the profile within its chunk
}

// Less reports whether p is before q.
func (p OutboxPosition) Less(q OutboxPosition) bool {
	if p.Commit != q.Commit {
		return p.Commit < q.Commit
	}
	if p.Seq != q.Seq {
		return p.Seq < q.Seq
	}
	return p.Index < q.Index
}

// OutboxRow is one emitted profile change; or, when Event is not nil, one
// answer of the as-of join; or, when Window is not nil, one activity
// window. Deleted means a tombstone: only Profile.ID is set.
type OutboxRow struct {
	Pos         OutboxPosition
	CommittedAt time.Time // just before the writing transaction committed
	Deleted     bool
	Profile     Profile
	Event       *EnrichedEvent  // an enriched event's row
	Window      *ActivityWindow // an activity window's row
}

// ActivityWindow is one emitted window of an organization's activity. Its
// JSON is the activity topic's value.
type ActivityWindow struct {
	OrganizationName string    `json:"organization_name"`
	Start            time.Time `json:"window_start"`
	End              time.Time `json:"window_end"`
	Created          int64     `json:"user_created"`
	Updated          int64     `json:"user_updated"`
	Deleted          int64     `json:"user_deleted"`
	ActiveUsers      int64     `json:"active_users"`
	// Final: the user watermark has passed End plus the allowed lateness;
	// the window changes no more.
	Final bool `json:"final"`
	// Correction: a re-emission because a late event changed the window.
	Correction bool `json:"-"`
}

// EnrichedEvent is one answer of the as-of join: a valid user event with
// the organization version that was in force at its received_at (the
// greatest created_at at or before it; the Organization* fields and
// OrgValidFrom are nil when there is none). Its JSON is the enriched
// topic's value.
type EnrichedEvent struct {
	Topic            string     `json:"-"`
	Partition        int32      `json:"-"`
	Offset           int64      `json:"-"`
	ID               string     `json:"id"`
	EventType        string     `json:"event_type"`
	Username         *string    `json:"username"`
	UserEmail        *string    `json:"user_email"`
	UserType         *string    `json:"user_type"`
	OrganizationName *string    `json:"organization_name"`
	ReceivedAt       time.Time  `json:"received_at"`
	OrganizationKey  *string    `json:"organization_key"`
	OrganizationTier *string    `json:"organization_tier"`
	OrgValidFrom     *time.Time `json:"org_valid_from"`
	// Correction: a re-emission of an answer that a late organization
	// version changed.
	Correction bool `json:"-"`
}

// ErrNotLeader: another process holds the changelog relay's lock.
var ErrNotLeader = errors.New("another process relays the changelog")

// Outbox is the changelog relay's hold on the outbox: a connection of its
// own, taken out of the pool, that holds the relay's session lock (one
// relay per schema), listens for commits, and reads and deletes outbox
// rows. It is not safe for concurrent use. Close it; if any method fails,
// the connection (and with it the lock) may be gone: Close it and lead
// again.
type Outbox struct {
	conn    *pgx.Conn
	channel string
}

// LeadChangelog takes a connection out of the pool, makes it the changelog
// relay's (pg_try_advisory_lock) and listens for commits on it. It returns
// ErrNotLeader at once if another session holds the lock. idleTimeout ends
// the session if it sends nothing for that long (PostgreSQL's
// idle_session_timeout), so that a frozen leader's lock frees itself: the
// caller must send something (Next, Wait) more often than that.
func (s *Store) LeadChangelog(ctx context.Context, idleTimeout time.Duration) (*Outbox, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting for the changelog relay: %w", err)
	}
	conn := pc.Hijack()
	fail := func(err error) (*Outbox, error) {
		conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the error that matters is err
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext('streamjoin.changelog.' || current_schema()))").Scan(&got); err != nil {
		return fail(fmt.Errorf("taking the changelog relay lock: %w", err))
	}
	if !got {
		return fail(ErrNotLeader)
	}
	var channel string
	if err := conn.QueryRow(ctx, "SELECT 'streamjoin_changelog_' || current_schema()").Scan(&channel); err != nil {
		return fail(fmt.Errorf("naming the changelog channel: %w", err))
	}
	setup := fmt.Sprintf("SET idle_session_timeout = %d; LISTEN %s", idleTimeout.Milliseconds(), pgx.Identifier{channel}.Sanitize())
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fail(fmt.Errorf("listening for changelog commits: %w", err))
	}
	return &Outbox{conn: conn, channel: channel}, nil
}

// Next returns the profiles of up to chunks outbox chunks after pos's
// chunk (pos.Index is not looked at: chunks are produced whole), in relay
// order (commit number, chunk, profile). It reads at most that many chunks
// of any one commit, so a large fan-out is read a page at a time.
func (o *Outbox) Next(ctx context.Context, pos OutboxPosition, chunks int) ([]OutboxRow, error) {
	rows, err := o.conn.Query(ctx, sqlOutboxNext, pos.Commit, pos.Seq, chunks)
	if err != nil {
		return nil, fmt.Errorf("reading the changelog outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanOutboxRow)
	if err != nil {
		return nil, fmt.Errorf("reading the changelog outbox: %w", err)
	}
	return out, nil
}

// scanOutboxRow reads one row of outbox_next.sql: a profile (kind 0) or an
// enriched event (kind 1).
func scanOutboxRow(row pgx.CollectableRow) (OutboxRow, error) {
	var (
		r                         OutboxRow
		kind                      int
		name                      *string
		at                        *time.Time
		topic, eventType          *string
		partition                 *int32
		offset                    *int64
		orgKey                    *string
		validFrom                 *time.Time
		correction, final         *bool
		created, updated, deleted *int64
		activeUsers               *int64
	)
	err := row.Scan(&r.Pos.Commit, &r.Pos.Seq, &r.CommittedAt, &r.Pos.Index, &kind,
		&r.Profile.ID, &r.Deleted, &name, &r.Profile.UserEmail, &r.Profile.UserType,
		&r.Profile.OrganizationName, &r.Profile.OrganizationTier, &at,
		&topic, &partition, &offset, &eventType, &orgKey, &validFrom, &correction,
		&created, &updated, &deleted, &activeUsers, &final)
	if err != nil {
		return r, err
	}
	if kind == 2 {
		if r.Profile.OrganizationName == nil || at == nil || validFrom == nil || correction == nil ||
			created == nil || updated == nil || deleted == nil || activeUsers == nil || final == nil {
			return r, fmt.Errorf("outbox chunk %d/%d: an activity window with a column missing", r.Pos.Commit, r.Pos.Seq)
		}
		r.Window = &ActivityWindow{OrganizationName: *r.Profile.OrganizationName, Start: at.UTC(), End: validFrom.UTC(),
			Created: *created, Updated: *updated, Deleted: *deleted, ActiveUsers: *activeUsers, Final: *final, Correction: *correction}
		r.Profile, r.Deleted = Profile{}, false
		return r, nil
	}
	if at != nil {
		r.Profile.ReceivedAt = at.UTC()
	}
	if kind == 0 {
		if name != nil {
			r.Profile.Username = *name
		}
		return r, nil
	}
	if topic == nil || partition == nil || offset == nil || eventType == nil || correction == nil {
		return r, fmt.Errorf("outbox chunk %d/%d: an enriched event without its source or type", r.Pos.Commit, r.Pos.Seq)
	}
	if validFrom != nil {
		t := validFrom.UTC()
		validFrom = &t
	}
	r.Event = &EnrichedEvent{
		Topic: *topic, Partition: *partition, Offset: *offset,
		ID: r.Profile.ID, EventType: *eventType, Username: name, UserEmail: r.Profile.UserEmail,
		UserType: r.Profile.UserType, OrganizationName: r.Profile.OrganizationName, ReceivedAt: r.Profile.ReceivedAt,
		OrganizationKey: orgKey, OrganizationTier: r.Profile.OrganizationTier, OrgValidFrom: validFrom,
		Correction: *correction,
	}
	r.Profile = Profile{}
	return r, nil
}

// Delete deletes the chunks up to and including pos's, which the relay
// has produced, and the commits it has finished.
func (o *Outbox) Delete(ctx context.Context, pos OutboxPosition) error {
	if _, err := o.conn.Exec(ctx, sqlOutboxDelete, pos.Commit, pos.Seq); err != nil {
		return fmt.Errorf("deleting relayed outbox rows: %w", err)
	}
	return nil
}

// Wait blocks until a state transaction that wrote outbox rows commits, or
// timeout passes (it returns nil either way), or ctx ends (ctx's error).
func (o *Outbox) Wait(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := o.conn.WaitForNotification(wctx)
	if err == nil || (ctx.Err() == nil && pgconn.Timeout(err)) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("waiting for changelog commits: %w", err)
}

// Close closes the connection, which releases the relay's lock.
func (o *Outbox) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o.conn.Close(ctx) //nolint:errcheck // closing: nothing left to do with an error
}
