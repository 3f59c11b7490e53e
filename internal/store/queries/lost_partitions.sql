-- The partitions, of those given with the generation the caller claimed,
-- that somebody has claimed since.
SELECT k.topic, k.partition
FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS w(topic, partition, generation)
JOIN kafka_offsets k ON k.topic = w.topic AND k.partition = w.partition
WHERE k.generation <> w.generation
