-- The rows of the next outbox chunks after position ($1 commit number, $2
-- chunk), at most $3 chunks, in relay order: commits in number order,
-- each commit's chunks in seq order (at most $3 of any one commit, so a
-- fan-out of 100,000 profiles is read a page at a time), each chunk's rows
-- in order. A chunk holds profiles (kind 0, the changelog), enriched
-- events (kind 1) or activity windows (kind 2); the columns of the other
-- kinds are NULL. A window's columns reuse the others' where they fit:
-- organization_name, and received_at for its start, org_valid_from for its
-- end, correction; its counts and final flag have their own.
SELECT ch.n, ch.seq, ch.committed_at, p.ord - 1, p.kind,
       p.id, p.deleted, p.username, p.user_email, p.user_type,
       p.organization_name, p.organization_tier, p.received_at,
       p.topic, p.partition, p."offset", p.event_type, p.organization_key, p.org_valid_from, p.correction,
       p.created, p.updated, p.deleted_n, p.active_users, p.final
FROM (
    SELECT c.n, c.committed_at, o.seq, o.payload, o.events, o.windows
    FROM changelog_commits c
    CROSS JOIN LATERAL (
        SELECT seq, payload, events, windows FROM changelog_outbox o
        WHERE o.xid = c.xid AND (c.n > $1 OR o.seq > $2)
        ORDER BY o.seq
        LIMIT $3
    ) o
    WHERE c.n >= $1
    ORDER BY c.n, o.seq
    LIMIT $3
) ch
CROSS JOIN LATERAL (
    SELECT 0 AS kind, x.id, x.deleted, x.username, x.user_email, x.user_type,
           x.organization_name, x.organization_tier, x.received_at,
           NULL::text AS topic, NULL::integer AS partition, NULL::bigint AS "offset", NULL::text AS event_type,
           NULL::text AS organization_key, NULL::timestamptz AS org_valid_from, NULL::boolean AS correction,
           NULL::bigint AS created, NULL::bigint AS updated, NULL::bigint AS deleted_n, NULL::bigint AS active_users,
           NULL::boolean AS final, x.ord
    FROM unnest(ch.payload) WITH ORDINALITY
        AS x(id, deleted, username, user_email, user_type, organization_name, organization_tier, received_at, ord)
    UNION ALL
    SELECT 1, y.id, false, y.username, y.user_email, y.user_type,
           y.organization_name, y.organization_tier, y.received_at,
           y.topic, y.partition, y."offset", y.event_type, y.organization_key, y.org_valid_from, y.correction,
           NULL, NULL, NULL, NULL, NULL, y.ord
    FROM unnest(ch.events) WITH ORDINALITY
        AS y(topic, partition, "offset", id, event_type, username, user_email, user_type, organization_name,
             received_at, organization_key, organization_tier, org_valid_from, correction, ord)
    UNION ALL
    SELECT 2, '', false, NULL, NULL, NULL,
           z.organization_name, NULL, z.window_start,
           NULL, NULL, NULL, NULL, NULL, z.window_end, z.correction,
           z.created, z.updated, z.deleted, z.active_users, z.final, z.ord
    FROM unnest(ch.windows) WITH ORDINALITY
        AS z(organization_name, window_start, window_end, created, updated, deleted, active_users, final, correction, ord)
) p
ORDER BY ch.n, ch.seq, p.ord
