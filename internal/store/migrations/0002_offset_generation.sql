-- generation counts how many times a partition was claimed. A consumer that
-- is assigned a partition bumps it and remembers the value; every batch and
-- every dead-letter produce checks it is still current. A member that lost
-- the partition (a paused "zombie") sees a newer generation and stops, before
-- its successor has committed anything.
ALTER TABLE kafka_offsets ADD COLUMN generation bigint NOT NULL DEFAULT 0;
