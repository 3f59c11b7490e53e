-- A row for every partition of the source topics, unclaimed (generation 0)
-- where none exists yet, so that a partition no member has claimed yet
-- holds its topic's watermark back instead of being left out of it.
INSERT INTO kafka_offsets (topic, partition, next_offset, generation)
SELECT topic, partition, NULL, 0
FROM unnest($1::text[], $2::integer[]) AS w(topic, partition)
ON CONFLICT (topic, partition) DO NOTHING
