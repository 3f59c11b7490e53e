-- The next outbox chunks after position ($1 commit number, $2 chunk), in
-- relay order, at most $3: commits in number order, each commit's chunks
-- in seq order, at most $3 chunks read from any one commit (a fan-out of
-- 100,000 profiles is read a page at a time).
SELECT c.n, o.seq, c.committed_at, o.payload
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
