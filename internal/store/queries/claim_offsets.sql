-- Make sure every assigned partition has a row, then return the stored next
-- offsets (NULL where nothing was committed yet).
WITH want AS (
    SELECT * FROM unnest($1::text[], $2::integer[]) AS w(topic, partition)
), ins AS (
    INSERT INTO kafka_offsets (topic, partition, next_offset)
    SELECT topic, partition, NULL FROM want
    ON CONFLICT (topic, partition) DO NOTHING
)
SELECT w.topic, w.partition, k.next_offset
FROM want w
LEFT JOIN kafka_offsets k ON k.topic = w.topic AND k.partition = w.partition
