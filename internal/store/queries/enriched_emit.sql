-- The as-of join's step for a batch's user events (EnrichTx), after their
-- raw COPY and under the enriched lock: each event whose time the frontier
-- (enriched_frontier) has reached is emitted to the outbox, in chunks of
-- 1,000, with the greatest organization version (created_at, then the
-- later record) at or before its received_at; the others wait in
-- enriched_pending. $1 user topic, $2 organization topic, $3 eager, then
-- the events' columns as arrays.
WITH b AS (
    SELECT *
    FROM unnest($4::integer[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[])
        WITH ORDINALITY AS b(partition, "offset", id, event_type, username, user_email, user_type, organization_name, received_at, ord)
), f AS (
    SELECT enriched_frontier($2, $3) AS e
), held AS (
    INSERT INTO enriched_pending (topic, partition, "offset", id, event_type, username, user_email, user_type, organization_name, received_at)
    SELECT $1, b.partition, b."offset", b.id, b.event_type, b.username, b.user_email, b.user_type, b.organization_name, b.received_at
    FROM b, f
    WHERE b.received_at > f.e
    ON CONFLICT DO NOTHING
), out AS (
    -- Chunks by the event's place in the batch: those held back leave
    -- their chunk short, which costs nothing.
    SELECT b.*, v.organization_key, v.organization_tier, v.created_at AS org_valid_from, b.ord - 1 AS rn
    FROM b
    CROSS JOIN f
    LEFT JOIN LATERAL org_version_at(b.organization_name, b.received_at) v ON true
    WHERE b.received_at <= f.e
)
INSERT INTO changelog_outbox (rows, events)
SELECT count(*), array_agg(ROW($1, partition, "offset", id, event_type, username, user_email, user_type,
                               organization_name, received_at, organization_key, organization_tier,
                               org_valid_from, false)::enriched_event ORDER BY rn)
FROM out
GROUP BY rn / 1000
ORDER BY rn / 1000
