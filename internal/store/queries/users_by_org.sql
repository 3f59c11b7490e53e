-- One page of an organization's live users, by id (GET /users?organization=).
-- Keyset pagination: $2 is the last id of the previous page ('' for the
-- first page). "id >= $2" is the index condition on users_org_live_id_idx
-- (organization_name, id) WHERE NOT deleted, so a page reads $3 index
-- entries wherever it starts; "id <> $2" drops the previous page's last row.
-- No OFFSET: a deep page costs what the first one does.
SELECT id, username, user_email, user_type, organization_name, organization_tier, received_at
FROM user_profiles
WHERE organization_name = $1
  AND id >= $2 AND ($2 = '' OR id <> $2)
ORDER BY id
LIMIT $3
