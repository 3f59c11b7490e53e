package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/streamjoin/streamjoin/internal/event"
	"github.com/streamjoin/streamjoin/internal/store"
	"github.com/streamjoin/streamjoin/internal/workload"
)

// sqlMinUpsert is the store's two upserts as one simple-protocol query,
// to which each transaction appends its offset advance.
var sqlMinUpsert = store.UpsertUsersSQL + ";\n" + store.UpsertOrgsSQL

// minimum is (a2): the same work as (b) and (c), on the same schema and
// data, written as lean as we can, as the floor that the schema costs. The
// events are decoded before the clock starts. Writers connections run in
// parallel, each over its own share of the keys (FNV of the user id or
// organization name, mod Writers; an invalid record by its partition), with
// no barrier between them, so that no connection ever waits for another's
// row locks: split by partition instead, two connections upsert the same
// users and wait on each other (156–161k events/s against 194–218k split
// by key, 1M events, same machine). Each takes its share in stream order,
// MinimumBatch events per transaction, and per transaction: COPYs the valid
// rows into the raw logs, COPYs the newest event per key into TEMP stage
// tables, upserts users and organizations from them newer-wins, and moves
// the offsets of the partitions it covered forward (greatest of stored and
// new: a key split can't keep the fence's From chain, so the floor keeps
// the statement, not the fence), then commits. COPY bodies are built in
// binary format in reused buffers; the two upserts and the offset advance
// go as one simple-protocol query.
func (b *bencher) minimum(ctx context.Context, run int, r *RunResult) error {
	schema := fmt.Sprintf("bench_a2_%d", run)
	st, err := b.freshSchema(ctx, schema, 1)
	if err != nil {
		return err
	}
	defer b.dropSchema(ctx, schema)
	var tps []store.TopicPartition
	for p := int32(0); p < partitions; p++ {
		tps = append(tps, store.TopicPartition{Topic: userTopic, Partition: p}, store.TopicPartition{Topic: orgTopic, Partition: p})
	}
	claims, err := st.ClaimOffsets(ctx, tps)
	st.Close()
	if err != nil {
		return err
	}

	items := b.data.items
	ws := make([]*minWriter, b.cfg.Writers)
	for i := range ws {
		w := &minWriter{items: items, batch: b.cfg.MinimumBatch, newest: map[string]int32{}, newestOrg: map[string]int32{}}
		for p := int32(0); p < partitions; p++ {
			w.gen[0][p] = claims[store.TopicPartition{Topic: userTopic, Partition: p}].Generation
			w.gen[1][p] = claims[store.TopicPartition{Topic: orgTopic, Partition: p}].Generation
			w.next[0][p], w.next[1][p] = -1, -1
		}
		for j := range items {
			if keyShare(&items[j], len(ws)) == i {
				w.share = append(w.share, int32(j))
			}
		}
		conn, err := b.conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, store.StageTablesSQL); err != nil {
			return fmt.Errorf("creating the stage tables: %w", err)
		}
		w.pg = conn.PgConn()
		ws[i] = w
	}

	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	start := time.Now()
	for i, w := range ws {
		wg.Go(func() { errs[i] = w.run(ctx) })
	}
	wg.Wait()
	r.Minimum = float64(len(items)) / time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	r.minimumDigest, err = b.digest(ctx, schema)
	return err
}

// minWriter is one connection of (a2). Not goroutine-safe.
type minWriter struct {
	pg    *pgconn.PgConn
	items []item
	share []int32 // indexes into items, in stream order
	batch int

	gen  [2][partitions]int64 // per kind (0 user, 1 org) and partition
	next [2][partitions]int64 // stored next offset; -1: NULL
	last [2][partitions]int64 // last offset in the current batch; -1: none

	newest    map[string]int32 // user id -> index into users
	newestOrg map[string]int32 // organization name -> index into orgs
	users     []int32          // newest user event per id, as item indexes
	orgs      []int32
	nUsers    int // valid user events in the batch
	nOrgs     int
	rawUsers  store.CopyRows
	rawOrgs   store.CopyRows
	stageUser store.CopyRows
	stageOrg  store.CopyRows
	sql       []byte
	rd        bytes.Reader
}

func (w *minWriter) run(ctx context.Context) error {
	for lo := 0; lo < len(w.share); lo += w.batch {
		if err := w.write(ctx, w.share[lo:min(lo+w.batch, len(w.share))]); err != nil {
			return err
		}
	}
	return nil
}

// write commits one batch in one transaction, or rolls it back.
func (w *minWriter) write(ctx context.Context, batch []int32) error {
	w.prepare(batch)
	if _, err := w.pg.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		return err
	}
	if err := w.inTx(ctx); err != nil {
		_, _ = w.pg.Exec(ctx, "ROLLBACK").ReadAll()
		return err
	}
	_, err := w.pg.Exec(ctx, "COMMIT").ReadAll()
	return err
}

func (w *minWriter) inTx(ctx context.Context) error {
	copies := []struct {
		sql string
		buf []byte
		n   int
	}{
		{store.CopyUserEvents, w.rawUsers.Bytes(), w.nUsers},
		{store.CopyStageUsers, w.stageUser.Bytes(), len(w.users)},
		{store.CopyOrgEvents, w.rawOrgs.Bytes(), w.nOrgs},
		{store.CopyStageOrgs, w.stageOrg.Bytes(), len(w.orgs)},
	}
	for _, c := range copies {
		if c.n == 0 {
			continue
		}
		w.rd.Reset(c.buf)
		if _, err := w.pg.CopyFrom(ctx, &w.rd, c.sql); err != nil {
			return fmt.Errorf("%s: %w", c.sql[:strings.Index(c.sql, " (")], err)
		}
	}
	res, err := w.pg.Exec(ctx, string(w.sql)).ReadAll()
	if err != nil {
		return fmt.Errorf("upserting and advancing offsets: %w", err)
	}
	want := 0
	for k := range w.last {
		for _, off := range w.last[k] {
			if off >= 0 {
				want++
			}
		}
	}
	if got := res[len(res)-1].CommandTag.RowsAffected(); got != int64(want) {
		return fmt.Errorf("offset advance: %d of %d partitions moved", got, want)
	}
	for k := range w.last {
		for p, off := range w.last[k] {
			if off >= 0 {
				w.next[k][p] = off + 1
			}
		}
	}
	return nil
}

// prepare builds the batch's COPY bodies and its upsert-and-advance query.
func (w *minWriter) prepare(batch []int32) {
	for k := range w.last {
		for p := range w.last[k] {
			w.last[k][p] = -1
		}
	}
	clear(w.newest)
	clear(w.newestOrg)
	w.users, w.orgs = w.users[:0], w.orgs[:0]
	w.rawUsers.Reset()
	w.rawOrgs.Reset()
	w.nUsers, w.nOrgs = 0, 0
	for _, i := range batch {
		it := &w.items[i]
		if it.kind == workload.UserEvent {
			w.last[0][it.pos.Partition] = it.pos.Offset
		} else {
			w.last[1][it.pos.Partition] = it.pos.Offset
		}
		if !it.valid {
			continue
		}
		if it.kind == workload.UserEvent {
			u := &it.user
			w.nUsers++
			w.rawUsers.UserEvent(userTopic, u)
			if j, ok := w.newest[u.ID]; !ok {
				w.newest[u.ID] = int32(len(w.users))
				w.users = append(w.users, i)
			} else if event.NewerUser(u, &w.items[w.users[j]].user) {
				w.users[j] = i
			}
			continue
		}
		o := &it.org
		w.nOrgs++
		w.rawOrgs.OrgEvent(orgTopic, o)
		if j, ok := w.newestOrg[o.Name]; !ok {
			w.newestOrg[o.Name] = int32(len(w.orgs))
			w.orgs = append(w.orgs, i)
		} else if event.NewerOrg(o, &w.items[w.orgs[j]].org) {
			w.orgs[j] = i
		}
	}
	w.stageRows()
	w.buildSQL()
}

// stageRows sorts the newest events by key and encodes them.
func (w *minWriter) stageRows() {
	items := w.items
	slices.SortFunc(w.users, func(a, b int32) int { return strings.Compare(items[a].user.ID, items[b].user.ID) })
	slices.SortFunc(w.orgs, func(a, b int32) int { return strings.Compare(items[a].org.Name, items[b].org.Name) })
	w.stageUser.Reset()
	for _, i := range w.users {
		w.stageUser.StageUser(&items[i].user)
	}
	w.stageOrg.Reset()
	for _, i := range w.orgs {
		w.stageOrg.StageOrg(&items[i].org)
	}
}

// buildSQL writes the upserts and the offset advance as one query.
// The values are integers and the two topic names: nothing to escape.
func (w *minWriter) buildSQL() {
	s := append(w.sql[:0], sqlMinUpsert...)
	s = append(s, ";\nUPDATE kafka_offsets k SET next_offset = greatest(k.next_offset, w.next_offset), updated_at = now() FROM (VALUES "...)
	first := true
	for k, topic := range [2]string{userTopic, orgTopic} {
		for p, off := range w.last[k] {
			if off < 0 {
				continue
			}
			if !first {
				s = append(s, ", "...)
			}
			first = false
			s = append(s, "('"...)
			s = append(s, topic...)
			s = append(s, "', "...)
			s = strconv.AppendInt(s, int64(p), 10)
			s = append(s, ", "...)
			s = strconv.AppendInt(s, w.gen[k][p], 10)
			s = append(s, "::bigint, "...)
			if w.next[k][p] < 0 {
				s = append(s, "NULL"...)
			} else {
				s = strconv.AppendInt(s, w.next[k][p], 10)
			}
			s = append(s, "::bigint, "...)
			s = strconv.AppendInt(s, off+1, 10)
			s = append(s, "::bigint)"...)
		}
	}
	s = append(s, ") AS w(topic, partition, generation, from_offset, next_offset)"+
		" WHERE k.topic = w.topic AND k.partition = w.partition AND k.generation = w.generation"...)
	w.sql = s
}

// keyShare is the connection of (a2) that writes it: FNV-1a of its key, mod
// n; an invalid record, which has no key, by its partition.
func keyShare(it *item, n int) int {
	var key string
	switch {
	case !it.valid:
		return int(it.pos.Partition) % n
	case it.kind == workload.UserEvent:
		key = it.user.ID
	default:
		key = it.org.Name
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
