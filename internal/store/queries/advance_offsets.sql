-- Move each partition's stored offset from where this writer last left it to
-- the end of the batch. The condition on the old value fences out zombies: a
-- writer that lost the partition, and whose successor has moved the offset
-- on, matches no row. The caller compares the returned rows with what it
-- asked for and rolls back on any difference.
UPDATE kafka_offsets k
SET next_offset = w.to_offset, updated_at = now()
FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[]) AS w(topic, partition, from_offset, to_offset)
WHERE k.topic = w.topic
  AND k.partition = w.partition
  AND k.next_offset IS NOT DISTINCT FROM w.from_offset
RETURNING k.topic, k.partition
