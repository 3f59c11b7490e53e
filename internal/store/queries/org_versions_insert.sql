-- A batch's organization events as versions for the as-of join (see
-- 0010_enriched.sql), in the transaction that appends them to the raw log:
-- $1 topic, then their partition, offset, name, key, tier and created_at.
INSERT INTO org_versions (organization_name, created_at, topic, partition, "offset", organization_key, organization_tier)
SELECT n, c, $1, p, o, k, t
FROM unnest($2::integer[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS v(p, o, n, k, t, c)
ON CONFLICT DO NOTHING
