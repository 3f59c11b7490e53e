-- (a), the database limit: the raw user rows into a table with no index and
-- no constraint, by COPY.
CREATE TABLE bench_raw_copy (
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
    kafka_timestamp   timestamptz NOT NULL
)
