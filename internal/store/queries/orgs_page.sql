-- One page of organizations by name (GET /organizations). Keyset pagination
-- on the primary key: $1 is the last name of the previous page ('' for the
-- first page); "organization_name >= $1" is the index condition and
-- "<> $1" drops the previous page's last row.
SELECT organization_name, organization_key, organization_tier, created_at
FROM organizations
WHERE organization_name >= $1 AND ($1 = '' OR organization_name <> $1)
ORDER BY organization_name
LIMIT $2
