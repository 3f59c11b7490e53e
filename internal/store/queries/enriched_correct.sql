-- The as-of join's step for a batch's organization versions (EnrichTx),
-- after their raw COPY and under the enriched lock held exclusively: every
-- emitted answer that a version of the batch changes is emitted again,
-- marked as a correction. A version may correct if its created_at is
-- within the allowed lateness ($3) of the organization watermark; one
-- older than that corrects nothing (it is counted: too_late).
--
-- For each organization, the answers that can change are those of its
-- events from the least correcting version's time up to the next version
-- after the greatest one; each is recomputed over every version (new) and
-- over the versions without the batch's (old), and emitted if they differ.
-- An event is emitted when it is in the raw log and not pending; the
-- batch's own user events are emitted by enriched_emit.sql with
-- the new versions already, and are left out here: by the offset span of
-- each of their partitions ($8-$10: partition, least and greatest
-- offset), which no other batch's records share.
--
-- $1 user topic, $2 organization topic, $3 allowed lateness, $4-$7 the
-- batch's versions (partition, offset, name, created_at), $8-$10 the
-- batch's user events' spans. Returns (too_late, corrections).
WITH nv AS (
    SELECT * FROM unnest($4::integer[], $5::bigint[], $6::text[], $7::timestamptz[])
        AS nv(partition, "offset", organization_name, created_at)
), horizon AS (
    SELECT coalesce((SELECT w.watermark FROM watermarks w WHERE w.topic = $2), '-infinity'::timestamptz) - $3::interval AS h
), span AS (
    SELECT nv.organization_name, min(nv.created_at) AS from_t, max(nv.created_at) AS last_t
    FROM nv, horizon
    WHERE nv.created_at >= horizon.h
    GROUP BY nv.organization_name
), bounds AS (
    SELECT s.organization_name, s.from_t,
           coalesce((SELECT min(o.created_at) FROM org_versions o
                     WHERE o.organization_name = s.organization_name AND o.created_at > s.last_t),
                    'infinity'::timestamptz) AS to_t
    FROM span s
), affected AS (
    -- LATERAL, so that each organization's span is an index range scan
    -- (user_events_org_received_idx) whatever the statistics of a young
    -- day partition say.
    SELECT e.*
    FROM bounds s
    CROSS JOIN LATERAL (
        SELECT * FROM user_events e
        WHERE e.organization_name = s.organization_name AND e.received_at >= s.from_t AND e.received_at < s.to_t
        OFFSET 0 -- not pulled up: a scan per organization, by the index
    ) e
    WHERE e.topic = $1
      AND NOT EXISTS (SELECT 1 FROM enriched_pending p
                      WHERE p.topic = e.topic AND p.partition = e.partition AND p."offset" = e."offset")
      AND NOT EXISTS (SELECT 1 FROM unnest($8::integer[], $9::bigint[], $10::bigint[]) AS bu(partition, lo, hi)
                      WHERE bu.partition = e.partition AND e."offset" BETWEEN bu.lo AND bu.hi)
), changed AS (
    SELECT a.*, nw.organization_key, nw.organization_tier, nw.created_at AS org_valid_from,
           row_number() OVER (ORDER BY a.received_at, a.partition, a."offset") - 1 AS rn
    FROM affected a
    LEFT JOIN LATERAL org_version_at(a.organization_name, a.received_at) nw ON true
    LEFT JOIN LATERAL (
        SELECT o.organization_key, o.organization_tier, o.created_at
        FROM org_versions o
        WHERE o.organization_name = a.organization_name AND o.created_at <= a.received_at
          AND NOT (o.topic = $2 AND EXISTS (SELECT 1 FROM nv WHERE nv.partition = o.partition AND nv."offset" = o."offset"))
        ORDER BY o.created_at DESC, o.partition DESC, o."offset" DESC
        LIMIT 1
    ) old ON true
    WHERE (nw.organization_key, nw.organization_tier, nw.created_at)
          IS DISTINCT FROM (old.organization_key, old.organization_tier, old.created_at)
), ins AS (
    INSERT INTO changelog_outbox (rows, events)
    SELECT count(*), array_agg(ROW(topic, partition, "offset", id, event_type, username, user_email, user_type,
                                   organization_name, received_at, organization_key, organization_tier,
                                   org_valid_from, true)::enriched_event ORDER BY rn)
    FROM changed
    GROUP BY rn / 1000
    ORDER BY rn / 1000
    RETURNING rows
)
SELECT (SELECT count(*) FROM nv, horizon WHERE nv.created_at < horizon.h),
       coalesce((SELECT sum(rows) FROM ins), 0)::bigint
