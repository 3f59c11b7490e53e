-- Event-time watermarks (internal/store/watermarks.go).
--
-- kafka_offsets.max_event_time: the greatest event time of the valid
-- records committed from the partition, moved by the fenced offset
-- advance, in the same transaction as the offset: a restart resumes it
-- exactly. idle_since: set by the partition's owner when it has been caught
-- up with no new records for the idle timeout; the next advance clears it.
ALTER TABLE kafka_offsets
    ADD COLUMN max_event_time timestamptz,
    ADD COLUMN idle_since     timestamptz;

-- watermarks: each source topic's watermark, which only ever moves forward.
CREATE TABLE watermarks (
    topic      text        PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
