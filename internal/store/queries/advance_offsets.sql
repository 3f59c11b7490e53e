-- Move each partition's stored offset from where this writer last left it to
-- the end of the batch. Two conditions fence out zombies: the generation must
-- be the one this writer claimed (nobody was assigned the partition since),
-- and the offset must be where this writer left it. A writer that lost the
-- partition matches no row. The caller compares the returned rows with what
-- it asked for and rolls back on any difference.
--
-- The partition's greatest event time moves with it ($6, NULL where the
-- batch had no valid event of it), and records mean it is no longer idle.
UPDATE kafka_offsets k
SET next_offset = w.to_offset, updated_at = now(),
    max_event_time = greatest(k.max_event_time, w.max_event_time),
    idle_since = NULL
FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[]) AS w(topic, partition, generation, from_offset, to_offset, max_event_time)
WHERE k.topic = w.topic
  AND k.partition = w.partition
  AND k.generation = w.generation
  AND k.next_offset IS NOT DISTINCT FROM w.from_offset
RETURNING k.topic, k.partition
