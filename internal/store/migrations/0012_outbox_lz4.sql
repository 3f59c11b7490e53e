-- The outbox's payloads are compressed with lz4 where the server has it
-- (PostgreSQL 14+, built with lz4, as Debian's and the managed services'
-- are): a chunk of 1,000 profiles writes about a fifth of the WAL it
-- wrote stored uncompressed, and takes no longer to write or read (pglz,
-- measured before, cost more than it saved). The parent and every
-- partition are set (the setting does not recurse); partitions created
-- later copy the parent's. A server without lz4 keeps them uncompressed,
-- out of line.
DO $$
DECLARE
    col text;
    tab regclass;
BEGIN
    FOR tab IN
        SELECT 'changelog_outbox'::regclass
        UNION ALL
        SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'changelog_outbox'::regclass
    LOOP
        FOREACH col IN ARRAY ARRAY['payload', 'events', 'windows'] LOOP
            BEGIN
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION lz4, ALTER COLUMN %I SET STORAGE EXTENDED', tab, col, col);
            EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
                RAISE NOTICE 'lz4 is not available: %.% stays uncompressed', tab, col;
            END;
        END LOOP;
    END LOOP;
END $$;
