-- The changelog's user step, after the users upsert (composed in
-- changelog.go as "WITH up AS (<upsert_users> RETURNING …) <this>"): the
-- profile of each user whose visible profile changed, joined to its
-- organization's tier, into the outbox in chunks of 1,000. A deleted user
-- is a tombstone.
, changed AS (
    SELECT up.*, row_number() OVER () - 1 AS rn,
           (SELECT o.organization_tier FROM organizations o
            WHERE o.organization_name = up.organization_name) AS organization_tier
    FROM up
    WHERE up.profile_changed
)
INSERT INTO changelog_outbox (rows, payload)
SELECT count(*), array_agg(ROW(id, deleted, username, user_email, user_type,
                              organization_name, organization_tier, received_at)::changelog_profile ORDER BY rn)
FROM changed
GROUP BY rn / 1000
ORDER BY rn / 1000
