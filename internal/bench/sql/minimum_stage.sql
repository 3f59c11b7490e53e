-- (a2), the minimum: per-connection staging tables for the newest event per
-- key of a batch, emptied at every commit, as the store's are.
CREATE TEMP TABLE min_stage_users (
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
CREATE TEMP TABLE min_stage_orgs (
    organization_name text,
    organization_key  text,
    organization_tier text,
    created_at        timestamptz,
    source_partition  integer,
    source_offset     bigint
) ON COMMIT DELETE ROWS;
