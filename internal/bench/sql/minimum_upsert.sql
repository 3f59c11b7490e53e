-- (a2), the minimum: both upserts, sent as one simple-protocol query. The
-- same rules as the store's: a staged row replaces the stored one only if it
-- is newer by (received_at, event type precedence, partition, offset), or
-- for organizations (created_at, partition, offset); a delete keeps the
-- stored fields it lacks. Rows go in key order so that the two connections
-- take row locks in the same order and cannot deadlock.
INSERT INTO users AS u (
    id, username, user_email, user_type, organization_name,
    received_at, deleted, event_type, source_partition, source_offset, updated_at)
SELECT id, username, user_email, user_type, organization_name,
       received_at, event_type = 'User Deleted', event_type, source_partition, source_offset, now()
FROM min_stage_users
ORDER BY id
ON CONFLICT (id) DO UPDATE SET
    username          = CASE WHEN EXCLUDED.deleted THEN coalesce(EXCLUDED.username, u.username) ELSE EXCLUDED.username END,
    user_email        = CASE WHEN EXCLUDED.deleted THEN coalesce(EXCLUDED.user_email, u.user_email) ELSE EXCLUDED.user_email END,
    user_type         = CASE WHEN EXCLUDED.deleted THEN coalesce(EXCLUDED.user_type, u.user_type) ELSE EXCLUDED.user_type END,
    organization_name = CASE WHEN EXCLUDED.deleted THEN coalesce(EXCLUDED.organization_name, u.organization_name) ELSE EXCLUDED.organization_name END,
    received_at       = EXCLUDED.received_at,
    deleted           = EXCLUDED.deleted,
    event_type        = EXCLUDED.event_type,
    source_partition  = EXCLUDED.source_partition,
    source_offset     = EXCLUDED.source_offset,
    updated_at        = EXCLUDED.updated_at
WHERE (EXCLUDED.received_at,
       CASE EXCLUDED.event_type WHEN 'User Deleted' THEN 2 WHEN 'User Updated' THEN 1 ELSE 0 END,
       EXCLUDED.source_partition, EXCLUDED.source_offset)
    > (u.received_at,
       CASE u.event_type WHEN 'User Deleted' THEN 2 WHEN 'User Updated' THEN 1 ELSE 0 END,
       u.source_partition, u.source_offset);
INSERT INTO organizations AS o (
    organization_name, organization_key, organization_tier, created_at,
    source_partition, source_offset, updated_at)
SELECT organization_name, organization_key, organization_tier, created_at,
       source_partition, source_offset, now()
FROM min_stage_orgs
ORDER BY organization_name
ON CONFLICT (organization_name) DO UPDATE SET
    organization_key  = EXCLUDED.organization_key,
    organization_tier = EXCLUDED.organization_tier,
    created_at        = EXCLUDED.created_at,
    source_partition  = EXCLUDED.source_partition,
    source_offset     = EXCLUDED.source_offset,
    updated_at        = EXCLUDED.updated_at
WHERE (EXCLUDED.created_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
    > (o.created_at, o.source_partition, o.source_offset)
