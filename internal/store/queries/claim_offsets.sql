-- Claim the assigned partitions: create missing rows, bump each generation
-- (which fences out the previous owner), and return the stored next offset
-- (NULL where nothing was committed yet) with the new generation.
INSERT INTO kafka_offsets AS k (topic, partition, next_offset, generation)
SELECT topic, partition, NULL, 1
FROM unnest($1::text[], $2::integer[]) AS w(topic, partition)
ON CONFLICT (topic, partition) DO UPDATE
SET generation = k.generation + 1, updated_at = now()
RETURNING k.topic, k.partition, k.next_offset, k.generation
