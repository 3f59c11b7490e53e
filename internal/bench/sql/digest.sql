-- What a measurement left in its schema (on the search_path): per table, the
-- row count and the sum of a hash of each row's compared columns. A
-- tombstone (deleted user) is compared without its username, email, type
-- and organization: it keeps those the stored row had when the delete was
-- applied, which depends on how the events were cut into batches, and
-- nothing reads them.
SELECT concat_ws(' ',
    'users', (SELECT count(*) || ':' || coalesce(sum(hashtext(CASE WHEN deleted THEN (id, NULL, NULL, NULL, NULL, received_at, deleted, event_type, source_partition, source_offset) ELSE (id, username, user_email, user_type, organization_name, received_at, deleted, event_type, source_partition, source_offset) END::text)::bigint), 0) FROM users),
    'organizations', (SELECT count(*) || ':' || coalesce(sum(hashtext((organization_name, organization_key, organization_tier, created_at, source_partition, source_offset)::text)::bigint), 0) FROM organizations),
    'user_events', (SELECT count(*) || ':' || coalesce(sum(hashtext((topic, partition, "offset", id, event_type, username, user_email, user_type, organization_name, received_at)::text)::bigint), 0) FROM user_events),
    'org_events', (SELECT count(*) || ':' || coalesce(sum(hashtext((topic, partition, "offset", organization_key, organization_name, organization_tier, created_at)::text)::bigint), 0) FROM org_events),
    'kafka_offsets', (SELECT count(*) || ':' || coalesce(sum(hashtext((topic, partition, next_offset)::text)::bigint), 0) FROM kafka_offsets))
