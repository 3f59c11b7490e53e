-- The last statement of a changelog transaction: if it wrote outbox rows,
-- take the next commit number and wake the relay. The clock row stays
-- locked until this transaction commits, so commit numbers are gap-free and
-- follow commit order (see 0006_changelog.sql). committed_at is read just
-- before the commit, for the changelog's latency.
WITH tick AS (
    UPDATE changelog_clock SET n = n + 1
    WHERE EXISTS (SELECT 1 FROM changelog_outbox WHERE xid = pg_current_xact_id())
    RETURNING n
), c AS (
    INSERT INTO changelog_commits (n, xid, committed_at)
    SELECT n, pg_current_xact_id(), clock_timestamp() FROM tick
    RETURNING n
)
SELECT pg_notify('streamjoin_changelog_' || current_schema(), n::text) FROM c
