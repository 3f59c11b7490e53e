-- The next outbox rows after position ($1 commit number, $2 seq), in relay
-- order, at most $3: commits in number order, each commit's rows in seq
-- order, at most $3 rows read from any one commit (a fan-out of 100,000
-- rows is read a page at a time).
SELECT c.n, o.seq, c.committed_at, o.id, o.deleted,
       o.username, o.user_email, o.user_type, o.organization_name,
       o.organization_tier, o.received_at
FROM changelog_commits c
CROSS JOIN LATERAL (
    SELECT * FROM changelog_outbox o
    WHERE o.xid = c.xid AND (c.n > $1 OR o.seq > $2)
    ORDER BY o.seq
    LIMIT $3
) o
WHERE c.n >= $1
ORDER BY c.n, o.seq
LIMIT $3
