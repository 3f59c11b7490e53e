-- Emit the windows the user watermark has passed ($1 user topic, $2 the
-- allowed lateness, $3 at most this many): a window whose end the
-- watermark has passed goes out once (emitted), and once more, final,
-- when the watermark passes its end plus the allowed lateness; then no
-- event changes it any more (activity_count.sql). Several processes may
-- fire at once: a window is taken by one of them. Then the windows that
-- ended more than $4 (the retention) before the watermark are deleted,
-- with their users. Returns the chunks' row counts.
WITH w AS (
    SELECT watermark AS wm FROM watermarks WHERE topic = $1
), due_first AS (
    SELECT a.organization_name, a.window_start FROM org_activity a, w
    WHERE NOT a.emitted AND a.window_end <= w.wm
    ORDER BY a.window_end LIMIT $3
    FOR UPDATE OF a SKIP LOCKED
), due_final AS (
    SELECT a.organization_name, a.window_start FROM org_activity a, w
    WHERE NOT a.final AND a.window_end + $2::interval <= w.wm
    ORDER BY a.window_end LIMIT $3
    FOR UPDATE OF a SKIP LOCKED
), due AS (
    SELECT * FROM due_first UNION SELECT * FROM due_final
), fired AS (
    UPDATE org_activity a
    SET emitted = true, final = a.window_end + $2::interval <= w.wm
    FROM due, w
    WHERE a.organization_name = due.organization_name AND a.window_start = due.window_start
    RETURNING a.*
), numbered AS (
    SELECT fired.*, row_number() OVER (ORDER BY fired.window_end, fired.organization_name) - 1 AS rn FROM fired
), gone AS (
    DELETE FROM org_activity a USING w
    WHERE a.window_end < w.wm - $4::interval AND a.final
    RETURNING a.organization_name, a.window_start
), gone_users AS (
    DELETE FROM org_activity_users u USING gone
    WHERE u.organization_name = gone.organization_name AND u.window_start = gone.window_start
)
INSERT INTO changelog_outbox (rows, windows)
SELECT count(*), array_agg(ROW(organization_name, window_start, window_end, created, updated, deleted,
                               active_users, final, false)::activity_window ORDER BY rn)
FROM numbered
GROUP BY rn / 1000
ORDER BY rn / 1000
RETURNING rows
