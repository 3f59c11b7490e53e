-- Emit the pending user events whose time the frontier (enriched_frontier)
-- has reached, at most $3 of them, oldest first, each with the greatest
-- organization version at or before its received_at, and delete them from
-- enriched_pending, under the enriched lock held shared. Several processes
-- may run it at once: a row is deleted, and so emitted, by one of them.
-- $1 organization topic, $2 eager. Returns the chunks' row counts.
WITH f AS (
    SELECT enriched_frontier($1, $2) AS e
), due AS (
    SELECT p.topic, p.partition, p."offset"
    FROM enriched_pending p, f
    WHERE p.received_at <= f.e
    ORDER BY p.received_at
    LIMIT $3
    FOR UPDATE OF p SKIP LOCKED
), gone AS (
    DELETE FROM enriched_pending p
    USING due
    WHERE p.topic = due.topic AND p.partition = due.partition AND p."offset" = due."offset"
    RETURNING p.*
), out AS (
    SELECT g.*, v.organization_key, v.organization_tier, v.created_at AS org_valid_from,
           row_number() OVER (ORDER BY g.received_at, g.topic, g.partition, g."offset") - 1 AS rn
    FROM gone g
    LEFT JOIN LATERAL org_version_at(g.organization_name, g.received_at) v ON true
)
INSERT INTO changelog_outbox (rows, events)
SELECT count(*), array_agg(ROW(topic, partition, "offset", id, event_type, username, user_email, user_type,
                               organization_name, received_at, organization_key, organization_tier,
                               org_valid_from, false)::enriched_event ORDER BY rn)
FROM out
GROUP BY rn / 1000
ORDER BY rn / 1000
RETURNING rows
