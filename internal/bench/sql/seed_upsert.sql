-- (d), the seed's approach, second statement: "update if exists else
-- insert", one event at a time, autocommit, with no event-time condition.
INSERT INTO users (id, username, user_email, user_type, organization_name, received_at, deleted, event_type, source_partition, source_offset)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    username = EXCLUDED.username, user_email = EXCLUDED.user_email, user_type = EXCLUDED.user_type,
    organization_name = EXCLUDED.organization_name, received_at = EXCLUDED.received_at,
    deleted = EXCLUDED.deleted, event_type = EXCLUDED.event_type,
    source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset, updated_at = now()
