-- The raw logs become tables partitioned by day of ingested_at (UTC), so
-- that retention drops whole partitions instead of scanning with DELETE
-- (rawlogs.go keeps partitions created ahead and drops old ones).
--
-- Each existing log becomes the partition <log>_before_<day after today>,
-- covering everything up to the end of today: no row is copied, and
-- attaching it checks (one scan) that every row is inside its range. The
-- next days get partitions of their own at once, so writes never wait for
-- the maintenance to run.
DO $$
DECLARE
    log    text;
    upto   date := (now() AT TIME ZONE 'UTC')::date + 1;
    legacy text;
    d      date;
BEGIN
    FOREACH log IN ARRAY ARRAY['user_events', 'org_events'] LOOP
        legacy := log || '_before_' || to_char(upto, 'YYYYMMDD');
        EXECUTE format('ALTER TABLE %I RENAME TO %I', log, legacy);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY RANGE (ingested_at)', log, legacy);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', log, legacy, upto::timestamp AT TIME ZONE 'UTC');
        FOR i IN 0..2 LOOP
            d := upto + i;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                log || '_d' || to_char(d, 'YYYYMMDD'), log,
                d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        END LOOP;
    END LOOP;
END $$;
