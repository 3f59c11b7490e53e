-- One user by id, deleted or not (the API's GET /users/by-id/{id}). A
-- tombstone keeps the last known fields (upsert_users.sql), so a deleted user
-- shows what it was. The tier is the organizations primary-key lookup the
-- user_profiles view makes.
SELECT u.id, u.username, u.user_email, u.user_type, u.organization_name,
       (SELECT o.organization_tier FROM organizations o WHERE o.organization_name = u.organization_name),
       u.received_at, u.deleted
FROM users u
WHERE u.id = $1
