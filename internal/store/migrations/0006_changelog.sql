-- The changelog outbox: the joined profiles that a state transaction
-- changed, written in that transaction, for the relay (internal/changelog)
-- to produce to the changelog topic in Kafka transactions and then delete.
-- docs/delivery-semantics.md ("The changelog") explains the design.

-- users.profile_changed: whether the last upsert of the row changed what
-- the user_profiles view shows of it. The upsert computes it against the
-- row it replaces, under that row's lock, so that a concurrent writer of
-- the same user (another member) can never make it stale.
ALTER TABLE users ADD COLUMN profile_changed boolean NOT NULL DEFAULT false;

-- organizations.tier_changed: the same for an organization's tier, which
-- is all of it the view shows. Computed under the row's lock too: two
-- writers creating the same organization at once must not both compare
-- against "no row".
ALTER TABLE organizations ADD COLUMN tier_changed boolean NOT NULL DEFAULT false;

-- changelog_profile: one emitted profile; deleted = true is a tombstone.
CREATE TYPE changelog_profile AS (
    id                text,
    deleted           boolean,
    username          text,
    user_email        text,
    user_type         text,
    organization_name text,
    organization_tier text,
    received_at       timestamptz
);

-- changelog_outbox: the emitted profile changes, in chunks of up to 1,000
-- per row (one heap row and one index entry per chunk, not per profile).
-- xid is the writing transaction and seq orders its chunks (each session
-- caches 1,000 values: increasing within a transaction is all the relay
-- needs). payload is an array of profiles, in binary: building it costs
-- a tenth of a JSON array's text. It is stored out of line uncompressed:
-- compressing it costs more than it saves for rows that live a second.
--
-- The relay deletes what it has produced, so the table stays small; it is
-- partitioned by day of created_at (the writing transaction's start) so
-- that the space those deletes leave goes with whole partitions, dropped
-- once they are empty and a day old (rawlogs.go), not with vacuum.
CREATE SEQUENCE changelog_outbox_seq CACHE 1000;
CREATE TABLE changelog_outbox (
    xid        xid8                NOT NULL DEFAULT pg_current_xact_id(),
    seq        bigint              NOT NULL DEFAULT nextval('changelog_outbox_seq'),
    created_at timestamptz         NOT NULL DEFAULT now(),
    rows       integer             NOT NULL,
    payload    changelog_profile[] NOT NULL,
    PRIMARY KEY (xid, seq, created_at)
) PARTITION BY RANGE (created_at);
ALTER TABLE changelog_outbox ALTER COLUMN payload SET STORAGE EXTERNAL;
DO $$
DECLARE
    d date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR i IN 0..3 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF changelog_outbox FOR VALUES FROM (%L) TO (%L)',
            'changelog_outbox_d' || to_char(d + i, 'YYYYMMDD'),
            (d + i)::timestamp AT TIME ZONE 'UTC', (d + i + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END $$;

-- changelog_commits: the commit order of the transactions that wrote
-- outbox rows. n is gap-free and increases in commit order: a transaction
-- takes it from changelog_clock in its last statement and holds the clock
-- row's lock until it commits, so the next one can only take n + 1 after
-- this one is visible. The relay reads commits in n order and never skips
-- one that commits late, which sequence numbers (assigned before commit)
-- could not promise.
CREATE TABLE changelog_commits (
    n            bigint      PRIMARY KEY,
    xid          xid8        NOT NULL,
    committed_at timestamptz NOT NULL
);

CREATE TABLE changelog_clock (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    n        bigint  NOT NULL
);
INSERT INTO changelog_clock (n) VALUES (0);

-- No index on users (organization_name) for the tier change's fan-out:
-- one cost 40% of ingest (at 1,000,000 events, (c) 113,142 with it,
-- 176,433 without, and (c+) 69,324 against 100,519), since an update that
-- moves a user to another organization, or that is not HOT, must update
-- it. The fan-out scans users once per batch with a tier change instead.
