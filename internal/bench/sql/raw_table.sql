-- (a), the database limit: the raw user rows into a table shaped like the
-- raw log, with no index and no constraint but NOT NULL, by COPY.
CREATE TABLE bench_raw_copy (LIKE user_events INCLUDING DEFAULTS)
