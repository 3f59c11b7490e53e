-- The API's read: live users with this exact username, joined to their
-- organization. $1 is a bound parameter, so % _ and quotes are plain text.
SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at
FROM user_profiles
WHERE username = $1
ORDER BY id
LIMIT $2
