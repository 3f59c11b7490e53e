-- Delete what the relay has produced, up to and including position ($1
-- commit number, $2 seq): the rows of commits before $1 and of $1 up to
-- $2, and the commits left without rows. The relay calls it after each
-- Kafka transaction, so it deletes about a page of rows.
WITH done AS (
    SELECT n, xid FROM changelog_commits WHERE n <= $1
), rows AS (
    DELETE FROM changelog_outbox o USING done
    WHERE o.xid = done.xid AND (done.n < $1 OR o.seq <= $2)
)
DELETE FROM changelog_commits c
WHERE c.n < $1
   OR (c.n = $1 AND NOT EXISTS (
        SELECT 1 FROM changelog_outbox o WHERE o.xid = c.xid AND o.seq > $2))
