-- Each source topic's stored watermark, with its greatest committed event
-- time and whether every partition is idle, as of now (read only).
SELECT w.topic, w.watermark, k.latest, coalesce(k.all_idle, false)
FROM watermarks w
LEFT JOIN (
    SELECT topic, max(max_event_time) AS latest, bool_and(idle_since IS NOT NULL) AS all_idle
    FROM kafka_offsets
    GROUP BY topic
) k USING (topic)
ORDER BY w.topic
