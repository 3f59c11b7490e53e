-- Mark partitions idle (caught up, no records for the idle timeout), only
-- under the generation their owner claimed, and only where nothing has
-- moved the offset since the owner looked ($4: the offset it saw).
UPDATE kafka_offsets k
SET idle_since = w.since
FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::timestamptz[]) AS w(topic, partition, generation, next_offset, since)
WHERE k.topic = w.topic
  AND k.partition = w.partition
  AND k.generation = w.generation
  AND k.next_offset IS NOT DISTINCT FROM w.next_offset
  AND k.idle_since IS NULL
RETURNING k.topic, k.partition
