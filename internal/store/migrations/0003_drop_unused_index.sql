-- Nothing reads users by organization_name: the API's join looks
-- organizations up by their primary key. The index only cost every upsert
-- an index update (see BENCHMARKS.md).
DROP INDEX IF EXISTS users_organization_name_idx;

