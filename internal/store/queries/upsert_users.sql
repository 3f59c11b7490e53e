-- Apply the staged users (one row per id, the newest of the batch). A staged
-- row replaces the stored one only if it is newer by (received_at, event type
-- precedence, partition, offset), so a late, older event never overwrites
-- newer state. Rows are inserted in id order so that concurrent writers take
-- row locks in the same order and cannot deadlock each other.
--
-- profile_changed says whether the row's user_profiles view changed: it is
-- computed against the row replaced, under its lock (the changelog reads
-- it; see 0006_changelog.sql). A tombstone shows nothing, so a deleted row
-- that stays deleted changes nothing visible.
INSERT INTO users AS u (
    id, username, user_email, user_type, organization_name,
    received_at, deleted, event_type, source_partition, source_offset, updated_at,
    profile_changed)
SELECT id, username, user_email, user_type, organization_name,
       received_at, event_type = 'User Deleted', event_type, source_partition, source_offset, now(),
       event_type <> 'User Deleted'
FROM stage_users
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
    updated_at        = EXCLUDED.updated_at,
    profile_changed   = CASE WHEN EXCLUDED.deleted THEN NOT u.deleted
                             ELSE u.deleted OR (u.username, u.user_email, u.user_type, u.organization_name, u.received_at)
                                  IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.user_email, EXCLUDED.user_type, EXCLUDED.organization_name, EXCLUDED.received_at)
                        END
WHERE (EXCLUDED.received_at,
       CASE EXCLUDED.event_type WHEN 'User Deleted' THEN 2 WHEN 'User Updated' THEN 1 ELSE 0 END,
       EXCLUDED.source_partition, EXCLUDED.source_offset)
    > (u.received_at,
       CASE u.event_type WHEN 'User Deleted' THEN 2 WHEN 'User Updated' THEN 1 ELSE 0 END,
       u.source_partition, u.source_offset)
