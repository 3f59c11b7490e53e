-- One page of an organization's live users, by id (GET /users?organization=).
-- Keyset pagination: $2 is the last id of the previous page ('' for the
-- first page). "id >= $2" is the index condition on users_pkey, walked from
-- the cursor's id and filtered by organization; "id <> $2" drops the
-- previous page's last row. No OFFSET: a deep page costs no more than the
-- first one. Nothing indexes users by organization (see 0006_changelog.sql
-- for what one cost ingest), so a page of a small organization may walk
-- much of users_pkey.
SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at
FROM user_profiles
WHERE organization_name = $1
  AND id >= $2 AND ($2 = '' OR id <> $2)
ORDER BY id
LIMIT $3
