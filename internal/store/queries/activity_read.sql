-- An organization's activity windows ($1) that start in [$2, $3), after
-- the window that starts at $4 (a page's cursor; -infinity for the first
-- page), in start order, at most $5 of them; from the window state
-- (activity_count.sql, activity_fire.sql).
SELECT window_start, window_end, created, updated, deleted, active_users, final
FROM org_activity
WHERE organization_name = $1
  AND window_start >= $2 AND window_start < $3 AND window_start > $4
ORDER BY window_start
LIMIT $5
