-- The API's coalesced read: for each distinct name in $1, up to $2 live
-- users with exactly that username, ordered by id, joined to their
-- organization. One statement and one snapshot serve every name; each name
-- is an index lookup on users_username_live_idx.
SELECT p.id, p.username, p.user_email, p.user_type, p.organization_name, p.organization_tier, p.received_at
FROM unnest($1::text[]) AS n(name)
CROSS JOIN LATERAL (
    SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at
    FROM user_profiles
    WHERE username = n.name
    ORDER BY id
    LIMIT $2
) AS p
