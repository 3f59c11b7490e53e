-- Nothing reads users by organization_name: the API's join looks
-- organizations up by their primary key. The index only cost every upsert
-- an index update (see BENCHMARKS.md).
DROP INDEX IF EXISTS users_organization_name_idx;


-- Nothing reads the raw logs by (topic, partition, offset) either. Their
-- exactly-once rests on the fenced offset advance in the same transaction,
-- which the chaos tests check row by row.
ALTER TABLE user_events DROP CONSTRAINT user_events_pkey;
ALTER TABLE org_events DROP CONSTRAINT org_events_pkey;
