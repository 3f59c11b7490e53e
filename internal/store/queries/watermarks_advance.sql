-- Move each source topic's watermark forward, from its partitions'
-- checkpointed event times ($1: the max out-of-orderness). A topic's
-- candidate is the least event time of its partitions that are not idle,
-- minus $1; a partition that is not idle and has no event yet holds the
-- topic back (no candidate); when every partition is idle, the greatest
-- event time minus $1. The stored watermark takes the candidate only if it
-- is greater: it never goes backwards, also when an idle partition wakes
-- with older events. Returns every topic: its watermark (NULL: none yet),
-- greatest event time, and whether all of its partitions are idle.
WITH per_topic AS (
    SELECT topic,
           bool_and(idle_since IS NOT NULL)                        AS all_idle,
           bool_or(idle_since IS NULL AND max_event_time IS NULL)  AS held,
           min(max_event_time) FILTER (WHERE idle_since IS NULL)   AS active_min,
           max(max_event_time)                                     AS latest
    FROM kafka_offsets
    GROUP BY topic
), candidate AS (
    SELECT topic, latest, all_idle,
           CASE WHEN all_idle THEN latest - $1::interval
                WHEN held THEN NULL
                ELSE active_min - $1::interval END AS wm
    FROM per_topic
), moved AS (
    INSERT INTO watermarks AS w (topic, watermark)
    SELECT topic, wm FROM candidate WHERE wm IS NOT NULL
    ON CONFLICT (topic) DO UPDATE
    SET watermark = EXCLUDED.watermark, updated_at = now()
    WHERE EXCLUDED.watermark > w.watermark
    RETURNING w.topic, w.watermark
)
SELECT c.topic,
       coalesce(m.watermark, (SELECT x.watermark FROM watermarks x WHERE x.topic = c.topic)),
       c.latest, c.all_idle
FROM candidate c
LEFT JOIN moved m USING (topic)
ORDER BY c.topic
