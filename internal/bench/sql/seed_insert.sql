-- (d), the seed's approach, first statement: append the event, autocommit.
INSERT INTO user_events (topic, partition, "offset", id, event_type, username, user_email, user_type, organization_name, received_at, kafka_timestamp)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
