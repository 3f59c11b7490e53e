-- Apply the staged organizations (one row per name, the newest of the batch).
-- The newer created_at wins; on equal times the later record wins.
-- tier_changed says whether the tier, which is what the view shows of an
-- organization, changed: computed against the row replaced, under its lock
-- (the changelog reads it).
INSERT INTO organizations AS o (
    organization_name, organization_key, organization_tier, created_at,
    source_partition, source_offset, updated_at, tier_changed)
SELECT organization_name, organization_key, organization_tier, created_at,
       source_partition, source_offset, now(), organization_tier IS NOT NULL
FROM stage_orgs
ORDER BY organization_name
ON CONFLICT (organization_name) DO UPDATE SET
    organization_key  = EXCLUDED.organization_key,
    organization_tier = EXCLUDED.organization_tier,
    created_at        = EXCLUDED.created_at,
    source_partition  = EXCLUDED.source_partition,
    source_offset     = EXCLUDED.source_offset,
    updated_at        = EXCLUDED.updated_at,
    tier_changed      = o.organization_tier IS DISTINCT FROM EXCLUDED.organization_tier
WHERE (EXCLUDED.created_at, EXCLUDED.source_partition, EXCLUDED.source_offset)
    > (o.created_at, o.source_partition, o.source_offset)
