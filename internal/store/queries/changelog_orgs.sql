-- The changelog's organization step (changelog.go puts the statements
-- together): upsert the batch's organizations, note those whose tier
-- changed, and re-emit the profile of each live user of those.
--
-- 1. The upsert (upsert_orgs.sql) goes between "up AS (" and ")"; it says,
--    per row, whether the tier changed, against the row it replaced and
--    under its lock. The organizations whose tier changed are kept, as a
--    JSON array, in a transaction-local setting: no temporary table to
--    truncate at commit.
WITH up AS (
    %s
    RETURNING o.organization_name, o.tier_changed
)
SELECT set_config('streamjoin.changed_orgs', coalesce(json_agg(up.organization_name), '[]')::text, true)
FROM up
WHERE up.tier_changed;
-- 2. A tier change is exclusive with every user step (which holds the
--    shared lock while it reads tiers), so the fan-out below sees every
--    user write that read the old tier, and none reads it after.
SELECT pg_advisory_xact_lock(%d, hashtext(current_schema()))
WHERE current_setting('streamjoin.changed_orgs') <> '[]';
-- 3. The fan-out, in one statement: no row passes through streamjoin. In
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
