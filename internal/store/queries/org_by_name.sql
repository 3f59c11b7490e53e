-- One organization and its count of live users (GET /organizations/{name}).
-- The count scans users: nothing indexes them by organization (see
-- 0006_changelog.sql for what one cost ingest).
SELECT o.organization_name, o.organization_key, o.organization_tier, o.created_at,
       (SELECT count(*) FROM users u WHERE u.organization_name = o.organization_name AND NOT u.deleted)
FROM organizations o
WHERE o.organization_name = $1
