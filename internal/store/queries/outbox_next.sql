-- The profiles of the next outbox chunks after position ($1 commit number,
-- $2 chunk), at most $3 chunks, in relay order: commits in number order,
-- each commit's chunks in seq order (at most $3 of any one commit, so a
-- fan-out of 100,000 profiles is read a page at a time), each chunk's
-- profiles in order.
SELECT ch.n, ch.seq, ch.committed_at, p.ord - 1,
       p.id, p.deleted, p.username, p.user_email, p.user_type,
       p.organization_name, p.organization_tier, p.received_at
FROM (
    SELECT c.n, c.committed_at, o.seq, o.payload
    FROM changelog_commits c
    CROSS JOIN LATERAL (
        SELECT seq, payload FROM changelog_outbox o
        WHERE o.xid = c.xid AND (c.n > $1 OR o.seq > $2)
        ORDER BY o.seq
        LIMIT $3
    ) o
    WHERE c.n >= $1
    ORDER BY c.n, o.seq
    LIMIT $3
) ch
CROSS JOIN LATERAL unnest(ch.payload) WITH ORDINALITY
    AS p(id, deleted, username, user_email, user_type, organization_name, organization_tier, received_at, ord)
ORDER BY ch.n, ch.seq, p.ord
