-- Indexes for the API's browsing reads (internal/store/browse.go, history.go).
--
-- user_events_id_received_at_idx: a user's history (user_history.sql) reads
-- the raw log by id; nothing indexed it by id before. Created on the
-- partitioned table, so every partition, present and future, gets one. It
-- costs the write path one more index entry per raw event (measured with
-- BenchmarkWriteBatch; see docs/api.md).
CREATE INDEX user_events_id_received_at_idx ON user_events (id, received_at);

-- Nothing indexes users by organization (see 0006): a page of an
-- organization's users (users_by_org.sql) walks users_pkey from the
-- cursor's id, which keeps its cost independent of its depth.
