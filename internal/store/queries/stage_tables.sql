-- Per-connection staging tables for set-based upserts. They live in pg_temp
-- and are emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS stage_users (
    id                text,
    event_type        text,
    username          text,
    user_email        text,
    user_type         text,
    organization_name text,
    received_at       timestamptz,
    source_partition  integer,
    source_offset     bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_orgs (
    organization_name text,
    organization_key  text,
    organization_tier text,
    created_at        timestamptz,
    source_partition  integer,
    source_offset     bigint
) ON COMMIT DELETE ROWS;
