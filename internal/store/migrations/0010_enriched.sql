-- The as-of join (docs/event-time.md, "The as-of join"): every valid user
-- event, enriched with the organization version in force at its event time,
-- is emitted to the enriched topic through the outbox, once the
-- organization watermark has passed it; an organization version that
-- arrives later, within the allowed lateness, corrects the answers it
-- changes. Everything here is written inside the batch transactions
-- (enriched.go).

-- org_versions: every organization version consumed, in precedence order
-- (created_at, then the later record): the as-of lookup takes the greatest
-- one at or before an event's time. The raw organization log holds the
-- same rows, but partitioned by day, so a lookup there probes every
-- partition; organization events are rare, and this small table, written
-- with the raw log (AppendRawTx), answers a lookup in one probe. It keeps
-- every version: the raw log's retention does not apply to it.
CREATE TABLE org_versions (
    organization_name text        NOT NULL,
    created_at        timestamptz NOT NULL,
    topic             text        NOT NULL,
    partition         integer     NOT NULL,
    "offset"          bigint      NOT NULL,
    organization_key  text,
    organization_tier text,
    PRIMARY KEY (organization_name, created_at, partition, "offset", topic)
);
INSERT INTO org_versions
SELECT organization_name, created_at, topic, partition, "offset", organization_key, organization_tier
FROM org_events
ON CONFLICT DO NOTHING;

-- org_version_at: the as-of lookup, the version of org in force at t (the
-- greatest created_at at or before t, then the later record); no row if
-- none. A single SELECT, so PostgreSQL inlines it into the LATERAL joins
-- that call it (one index probe each).
CREATE FUNCTION org_version_at(org text, t timestamptz)
RETURNS TABLE (organization_key text, organization_tier text, created_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT o.organization_key, o.organization_tier, o.created_at
    FROM org_versions o
    WHERE o.organization_name = org AND o.created_at <= t
    ORDER BY o.created_at DESC, o.partition DESC, o."offset" DESC
    LIMIT 1
$$;

-- The events a late version may correct are found by an index of the raw
-- user log by organization and event time, user_events_org_received_idx.
-- It costs every raw user event an index entry (a fifth of the pipeline's
-- throughput with the outputs off), so it is not created here: Migrate
-- creates it when the as-of join is on (enriched.go, ensureEnrichedIndex).

-- enriched_pending: valid user events not emitted yet, because the
-- organization watermark has not reached their event time. The watermark
-- loop emits and deletes them (enriched_release.sql). A raw user event that
-- is not pending has been emitted.
CREATE TABLE enriched_pending (
    topic             text        NOT NULL,
    partition         integer     NOT NULL,
    "offset"          bigint      NOT NULL,
    id                text        NOT NULL,
    event_type        text        NOT NULL,
    username          text,
    user_email        text,
    user_type         text,
    organization_name text,
    received_at       timestamptz NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX enriched_pending_received_at_idx ON enriched_pending (received_at);

-- enriched_event: one emitted answer. The organization_* fields and
-- org_valid_from (the version's created_at) are NULL when no version is at
-- or before the event's time. correction: a re-emission of an answer that
-- a late version changed.
CREATE TYPE enriched_event AS (
    topic             text,
    partition         integer,
    "offset"          bigint,
    id                text,
    event_type        text,
    username          text,
    user_email        text,
    user_type         text,
    organization_name text,
    received_at       timestamptz,
    organization_key  text,
    organization_tier text,
    org_valid_from    timestamptz,
    correction        boolean
);

-- The outbox carries both outputs: a chunk holds profiles (payload, for
-- the changelog topic) or enriched events (events), never both, so that
-- one relay produces both in commit order.
ALTER TABLE changelog_outbox ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE changelog_outbox ADD COLUMN events enriched_event[];
ALTER TABLE changelog_outbox ALTER COLUMN events SET STORAGE EXTERNAL;

-- enriched_frontier: how far in event time user events may be emitted.
-- The organization topic's watermark (none yet: nothing may), or no bound
-- when every partition of that topic is idle (an idle organization topic
-- never stalls the join: events go out against the versions known, and a
-- version that arrives later corrects them) or when eager.
CREATE FUNCTION enriched_frontier(org_topic text, eager boolean) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN eager THEN 'infinity'::timestamptz
        WHEN (SELECT bool_and(k.idle_since IS NOT NULL) FROM kafka_offsets k WHERE k.topic = org_topic)
            THEN 'infinity'::timestamptz
        ELSE coalesce((SELECT w.watermark FROM watermarks w WHERE w.topic = org_topic), '-infinity'::timestamptz)
    END
$$;
