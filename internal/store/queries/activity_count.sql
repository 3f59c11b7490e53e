-- The windowed activity's step for a batch's user events (ActivityTx),
-- after their raw COPY: each event with an organization is counted in its
-- organization's tumbling window of $2 (date_bin from the Unix epoch), and
-- its user among the window's distinct users, unless the window is too
-- late: its end plus the allowed lateness ($3) at or behind the user
-- watermark, or final already. A window that had gone out is emitted
-- again, as a correction, in chunks of 1,000 windows. $1 user topic, $4-$7
-- the events' id, event_type, organization_name and received_at. Returns
-- how many events were too late, and how many corrections were emitted.
--
-- Two writers counting the same new user in the same window: the second
-- one's insert into org_activity_users waits for the first's row and then
-- skips it, so a user is counted once. A window finalized by a concurrent
-- firing (activity_fire.sql) is skipped under its row lock: those events
-- count as too late.
WITH b AS (
    SELECT b.*, date_bin($2::interval, b.received_at, 'epoch') AS window_start
    FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS b(id, event_type, organization_name, received_at)
    WHERE b.organization_name IS NOT NULL
), w AS (
    SELECT coalesce((SELECT watermark FROM watermarks WHERE topic = $1), '-infinity'::timestamptz) AS wm
), ok AS (
    SELECT b.* FROM b, w WHERE b.window_start + $2::interval + $3::interval > w.wm
), fresh AS (
    INSERT INTO org_activity_users (organization_name, window_start, user_id)
    SELECT DISTINCT organization_name, window_start, id FROM ok
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING organization_name, window_start
), fresh_n AS (
    SELECT organization_name, window_start, count(*) AS users FROM fresh GROUP BY organization_name, window_start
), counts AS (
    SELECT organization_name, window_start,
           count(*) FILTER (WHERE event_type = 'User Created') AS created,
           count(*) FILTER (WHERE event_type = 'User Updated') AS updated,
           count(*) FILTER (WHERE event_type = 'User Deleted') AS deleted,
           count(*) AS n
    FROM ok
    GROUP BY organization_name, window_start
), up AS (
    INSERT INTO org_activity AS a (organization_name, window_start, window_end, created, updated, deleted, active_users)
    SELECT c.organization_name, c.window_start, c.window_start + $2::interval, c.created, c.updated, c.deleted, coalesce(f.users, 0)
    FROM counts c
    LEFT JOIN fresh_n f USING (organization_name, window_start)
    ORDER BY c.organization_name, c.window_start
    ON CONFLICT (organization_name, window_start) DO UPDATE SET
        created      = a.created + EXCLUDED.created,
        updated      = a.updated + EXCLUDED.updated,
        deleted      = a.deleted + EXCLUDED.deleted,
        active_users = a.active_users + EXCLUDED.active_users
    WHERE NOT a.final
    RETURNING a.*
), corrected AS (
    SELECT up.*, row_number() OVER (ORDER BY up.organization_name, up.window_start) - 1 AS rn
    FROM up
    WHERE up.emitted
), ins AS (
    INSERT INTO changelog_outbox (rows, windows)
    SELECT count(*), array_agg(ROW(organization_name, window_start, window_end, created, updated, deleted,
                                   active_users, false, true)::activity_window ORDER BY rn)
    FROM corrected
    GROUP BY rn / 1000
    ORDER BY rn / 1000
    RETURNING rows
)
SELECT (SELECT count(*) FROM b) - coalesce((SELECT sum(c.n) FROM counts c JOIN up USING (organization_name, window_start)), 0),
       coalesce((SELECT sum(rows) FROM ins), 0)::bigint
