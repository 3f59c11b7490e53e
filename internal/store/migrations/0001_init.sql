-- The data contract. Tables are created in the configured schema: the
-- migrator sets search_path before running this file.

-- users: current state per user id. A "User Deleted" event keeps the row as a
-- tombstone (deleted = true) so that an older event arriving later cannot
-- bring the user back.
CREATE TABLE users (
    id                text        PRIMARY KEY,
    username          text,
    user_email        text,
    user_type         text,
    organization_name text,
    received_at       timestamptz NOT NULL,
    deleted           boolean     NOT NULL,
    event_type        text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_username_live_idx ON users (username) WHERE NOT deleted;
CREATE INDEX users_organization_name_idx ON users (organization_name);

-- organizations: current state per organization_name.
CREATE TABLE organizations (
    organization_name text        PRIMARY KEY,
    organization_key  text,
    organization_tier text,
    created_at        timestamptz NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- user_events and org_events: append-only logs of every valid record.
CREATE TABLE user_events (
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
    kafka_timestamp   timestamptz NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);

CREATE TABLE org_events (
    topic             text        NOT NULL,
    partition         integer     NOT NULL,
    "offset"          bigint      NOT NULL,
    organization_key  text,
    organization_name text        NOT NULL,
    organization_tier text,
    created_at        timestamptz NOT NULL,
    kafka_timestamp   timestamptz NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);

-- kafka_offsets: the next offset to consume per partition, written in the
-- same transaction as the data it covers. NULL means "nothing committed yet".
CREATE TABLE kafka_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- user_profiles: the join the API serves. Live users left-joined to their
-- organization, so a user whose organization has not arrived yet shows a
-- NULL tier until it does.
CREATE VIEW user_profiles AS
SELECT u.id,
       u.username,
       u.user_email,
       u.user_type,
       u.organization_name,
       o.organization_tier,
       u.received_at
FROM users u
LEFT JOIN organizations o ON o.organization_name = u.organization_name
WHERE NOT u.deleted;
