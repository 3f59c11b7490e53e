-- The changelog's user step, after the users upsert (composed in
-- changelog.go as "WITH up AS (<upsert_users> RETURNING …) <this>"): the
-- profile of each user whose visible profile changed, joined to its
-- organization's tier, into the outbox. A deleted user is a tombstone.
INSERT INTO changelog_outbox (
    id, deleted, username, user_email, user_type,
    organization_name, organization_tier, received_at)
SELECT up.id, up.deleted, up.username, up.user_email, up.user_type,
       up.organization_name,
       (SELECT o.organization_tier FROM organizations o
        WHERE o.organization_name = up.organization_name),
       up.received_at
FROM up
WHERE up.profile_changed
ORDER BY up.id
