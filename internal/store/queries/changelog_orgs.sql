-- The changelog's organization step (changelog.go puts the statements
-- together): lock the batch's organizations, upsert them, note those whose
-- tier changed, and re-emit the profile of each live user of those.
--
-- 1. Lock the rows first, in name order, so that "old" below is the row the
--    upsert replaces even when another member writes the same organization.
SELECT 1 FROM organizations
WHERE organization_name IN (SELECT organization_name FROM stage_orgs)
ORDER BY organization_name
FOR UPDATE;
-- 2. The upsert (upsert_orgs.sql) goes between "up AS (" and ")". The
--    organizations whose tier changed are kept, as a JSON array, in a
--    transaction-local setting: no temporary table to truncate at commit.
WITH old AS (
    SELECT organization_name, organization_tier FROM organizations
    WHERE organization_name IN (SELECT organization_name FROM stage_orgs)
), up AS (
    %s
    RETURNING o.organization_name, o.organization_tier
)
SELECT set_config('streamjoin.changed_orgs', coalesce(json_agg(up.organization_name)::text, '[]'), true)
FROM up LEFT JOIN old USING (organization_name)
WHERE up.organization_tier IS DISTINCT FROM old.organization_tier;
-- 3. A tier change is exclusive with every user step (which holds the
--    shared lock while it reads tiers), so the fan-out below sees every
--    user write that read the old tier, and none reads it after.
SELECT pg_advisory_xact_lock(%d, hashtext(current_schema()))
WHERE current_setting('streamjoin.changed_orgs') <> '[]';
-- 4. The fan-out, in one statement: no row passes through streamjoin. In
--    chunks of 1,000 profiles, in id order.
WITH fan AS (
    SELECT u.id, u.username, u.user_email, u.user_type, u.organization_name,
           o.organization_tier, u.received_at,
           row_number() OVER (ORDER BY u.id) - 1 AS rn
    FROM json_array_elements_text(current_setting('streamjoin.changed_orgs')::json) AS c(organization_name)
    JOIN organizations o ON o.organization_name = c.organization_name
    JOIN users u ON u.organization_name = c.organization_name
    WHERE NOT u.deleted
)
INSERT INTO changelog_outbox (rows, payload)
SELECT count(*), array_agg(ROW(id, false, username, user_email, user_type,
                              organization_name, organization_tier, received_at)::changelog_profile ORDER BY rn)
FROM fan
GROUP BY rn / 1000
ORDER BY rn / 1000
