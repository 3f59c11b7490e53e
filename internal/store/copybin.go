package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
)

// The batch writer's COPYs are encoded here, in PostgreSQL's binary COPY
// format, straight into one reused buffer, and sent with the connection's
// COPY protocol. pgx.CopyFrom would first ask the server for the columns'
// types (a round trip and a parse per COPY, four per batch) and then encode
// every value through its type map; profiled under `streamjoin bench`, that
// was about 30% of the pipeline's CPU. The column types are fixed by the
// migrations; TestBinaryCopyMatchesCopyFrom checks the bytes land as
// pgx.CopyFrom would land them.

// The COPY column lists: the raw logs get every event as it arrived; the
// staging tables get the newest event per key (event.LatestUsers,
// event.LatestOrgs). Each encode… function below writes its list's columns
// in this order.
var (
	userEventCols = []string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"}
	orgEventCols  = []string{"topic", "partition", "offset", "organization_key", "organization_name", "organization_tier", "created_at", "kafka_timestamp"}
	stageUserCols = []string{"id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "source_partition", "source_offset"}
	stageOrgCols  = []string{"organization_name", "organization_key", "organization_tier", "created_at", "source_partition", "source_offset"}
)

// copyBuf is the body of a COPY … FROM STDIN (FORMAT binary). Not
// goroutine-safe.
type copyBuf struct{ b []byte }

// pgEpochMicros is 2000-01-01T00:00:00Z in Unix microseconds: a binary
// timestamptz counts microseconds from there.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// reset starts a body: the signature, no flags, no header extension.
func (c *copyBuf) reset() {
	c.b = append(c.b[:0], "PGCOPY\n\xff\r\n\x00"...)
	c.b = binary.BigEndian.AppendUint32(c.b, 0)
	c.b = binary.BigEndian.AppendUint32(c.b, 0)
}

func (c *copyBuf) row(fields int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(fields)) }

func (c *copyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *copyBuf) textOrNull(s *string) {
	if s == nil {
		c.b = binary.BigEndian.AppendUint32(c.b, 0xFFFFFFFF)
		return
	}
	c.text(*s)
}

func (c *copyBuf) int4(v int32) {
	c.b = binary.BigEndian.AppendUint32(c.b, 4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *copyBuf) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

// timestamptz writes t at microsecond precision (the decoder already
// truncated event times; Kafka timestamps are milliseconds).
func (c *copyBuf) timestamptz(t time.Time) { c.int8(t.UnixMicro() - pgEpochMicros) }

// user writes the columns both user tables share, in their order: id,
// event_type, username, user_email, user_type, organization_name.
func (c *copyBuf) user(u *event.User) {
	c.text(u.ID)
	c.text(u.Type.String())
	c.textOrNull(u.Username)
	c.textOrNull(u.Email)
	c.textOrNull(u.UserType)
	c.textOrNull(u.OrganizationName)
}

// finish writes the trailer.
func (c *copyBuf) finish() { c.b = binary.BigEndian.AppendUint16(c.b, 0xFFFF) }

// copyBinary sends the rows encode writes with the COPY statement sql, in
// tx, and checks that PostgreSQL took n rows (table names it in errors).
func copyBinary(ctx context.Context, tx pgx.Tx, table, sql string, n int, encode func(*CopyRows)) error {
	r := copyRowsPool.Get().(*CopyRows)
	defer copyRowsPool.Put(r)
	r.Reset()
	encode(r)
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(r.Bytes()), sql)
	if err != nil {
		return err
	}
	if got := tag.RowsAffected(); got != int64(n) {
		return fmt.Errorf("COPY %s took %d rows, want %d", table, got, n)
	}
	return nil
}

var copyRowsPool = sync.Pool{New: func() any { return new(CopyRows) }}

// copySQL is the binary COPY statement of cols of table.
func copySQL(table string, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(q, ", ") + ") FROM STDIN (FORMAT binary)"
}

// CopyRows appends rows to a binary COPY body, in the column order of the
// statements CopyUserEvents, CopyStageUsers, CopyOrgEvents and
// CopyStageOrgs. The batch writer uses it, and so does `streamjoin bench`'s
// floor (a2), so that both send the same bytes. The zero value is ready;
// Reset starts a body, Bytes ends it. Not goroutine-safe.
type CopyRows struct {
	c     copyBuf
	ended bool
}

// The COPY statements of the batch writer, for CopyRows bodies.
var (
	CopyUserEvents = copySQL("user_events", userEventCols)
	CopyStageUsers = copySQL("stage_users", stageUserCols)
	CopyOrgEvents  = copySQL("org_events", orgEventCols)
	CopyStageOrgs  = copySQL("stage_orgs", stageOrgCols)
)

// Reset starts a new body, keeping the buffer.
func (r *CopyRows) Reset() {
	r.c.reset()
	r.ended = false
}

// Bytes ends the body, if it is not ended yet, and returns it; it is valid
// until the next Reset, and no row may be added after it.
func (r *CopyRows) Bytes() []byte {
	if !r.ended {
		r.c.finish()
		r.ended = true
	}
	return r.c.b
}

// UserEvent appends u as a row of the raw log user_events, from topic.
func (r *CopyRows) UserEvent(topic string, u *event.User) {
	c := &r.c
	c.row(len(userEventCols))
	c.text(topic)
	c.int4(u.Pos.Partition)
	c.int8(u.Pos.Offset)
	c.user(u)
	c.timestamptz(u.ReceivedAt)
	c.timestamptz(u.LogTime)
}

// StageUser appends u as a row of the staging table stage_users.
func (r *CopyRows) StageUser(u *event.User) {
	c := &r.c
	c.row(len(stageUserCols))
	c.user(u)
	c.timestamptz(u.ReceivedAt)
	c.int4(u.Pos.Partition)
	c.int8(u.Pos.Offset)
}

// OrgEvent appends o as a row of the raw log org_events, from topic.
func (r *CopyRows) OrgEvent(topic string, o *event.Org) {
	c := &r.c
	c.row(len(orgEventCols))
	c.text(topic)
	c.int4(o.Pos.Partition)
	c.int8(o.Pos.Offset)
	c.textOrNull(o.Key)
	c.text(o.Name)
	c.textOrNull(o.Tier)
	c.timestamptz(o.CreatedAt)
	c.timestamptz(o.LogTime)
}

// StageOrg appends o as a row of the staging table stage_orgs.
func (r *CopyRows) StageOrg(o *event.Org) {
	c := &r.c
	c.row(len(stageOrgCols))
	c.text(o.Name)
	c.textOrNull(o.Key)
	c.textOrNull(o.Tier)
	c.timestamptz(o.CreatedAt)
	c.int4(o.Pos.Partition)
	c.int8(o.Pos.Offset)
}

func encodeUserEvents(topic string, us []event.User) func(*CopyRows) {
	return func(r *CopyRows) {
		for i := range us {
			r.UserEvent(topic, &us[i])
		}
	}
}

func encodeStageUsers(us []event.User) func(*CopyRows) {
	return func(r *CopyRows) {
		for i := range us {
			r.StageUser(&us[i])
		}
	}
}

func encodeOrgEvents(topic string, os []event.Org) func(*CopyRows) {
	return func(r *CopyRows) {
		for i := range os {
			r.OrgEvent(topic, &os[i])
		}
	}
}

func encodeStageOrgs(os []event.Org) func(*CopyRows) {
	return func(r *CopyRows) {
		for i := range os {
			r.StageOrg(&os[i])
		}
	}
}
