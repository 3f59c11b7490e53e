-- One name's read: live users with this exact username, joined to their
-- organization. The API merges names into users_by_names.sql; this is the
-- direct-pgx baseline of `streamjoin bench` and the reference its tests
-- compare that query with. $1 is a bound parameter, so % _ and quotes are plain text.
SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at
FROM user_profiles
WHERE username = $1
ORDER BY id
LIMIT $2
