-- Indexes for the API's browsing reads (internal/store/browse.go, history.go).
--
-- user_events_id_received_at_idx: a user's history (user_history.sql) reads
-- the raw log by id; nothing indexed it by id before. Created on the
-- partitioned table, so every partition, present and future, gets one. It
-- costs the write path one more index entry per raw event (measured with
-- BenchmarkWriteBatch; see docs/api.md).
CREATE INDEX user_events_id_received_at_idx ON user_events (id, received_at);

-- users_org_live_id_idx replaces users_organization_name_live_idx: the same
-- live rows, with id as a second key, so that one page of an organization's
-- users (users_by_org.sql) is an index range scan from the cursor's id, not
-- a sort of the whole organization. The changelog's lookups by organization
-- use its first column as they used the old index.
CREATE INDEX users_org_live_id_idx ON users (organization_name, id) WHERE NOT deleted;
DROP INDEX users_organization_name_live_idx;
