-- One page of a user's raw events (GET /users/by-id/{id}/history), in event
-- time order: received_at, then type precedence (Deleted > Updated >
-- Created), partition, offset (upsert_users.sql's order), then topic.
--
-- applied: the event was newer, in that order, than every event of the user
-- ingested before it or in the same transaction (ingested_at is the writing
-- transaction's start), so it replaced the state when it was written. The
-- window's frame (RANGE ... CURRENT ROW) takes in the rows ingested at the
-- same instant, because a batch stages only its newest event per user.
-- is_current: the event is the one the users row holds now.
--
-- The window needs every event of the user, so a page costs the user's
-- whole history (read through user_events_id_received_at_idx), whatever the
-- cursor. $2..$6 are the previous page's last key; $2 NULL is the first page.
WITH ev AS (
    SELECT e.topic, e.partition, e."offset", e.event_type, e.username, e.user_email,
           e.user_type, e.organization_name, e.received_at, e.kafka_timestamp, e.ingested_at,
           CASE e.event_type WHEN 'User Deleted' THEN 2 WHEN 'User Updated' THEN 1 ELSE 0 END AS prec
    FROM user_events e
    WHERE e.id = $1
), ranked AS (
    SELECT ev.*,
           k = max(k) OVER (ORDER BY ingested_at RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS applied
    FROM ev, LATERAL (SELECT ARRAY[(extract(epoch FROM ev.received_at) * 1000000)::numeric,
                                   ev.prec, ev.partition, ev."offset"]) AS key(k)
)
SELECT r.topic, r.partition, r."offset", r.event_type, r.username, r.user_email,
       r.user_type, r.organization_name, r.received_at, r.kafka_timestamp, r.ingested_at,
       r.prec, r.applied,
       coalesce(u.source_partition = r.partition AND u.source_offset = r."offset"
                AND u.received_at = r.received_at AND u.event_type = r.event_type, false) AS is_current
FROM ranked r
LEFT JOIN users u ON u.id = $1
WHERE $2::timestamptz IS NULL
   OR (r.received_at, r.prec, r.partition, r."offset", r.topic) > ($2, $3::int, $4::int, $5::bigint, $6::text)
ORDER BY r.received_at, r.prec, r.partition, r."offset", r.topic
LIMIT $7
