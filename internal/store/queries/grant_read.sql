-- The statements that give role $2 read-only access to what the API reads
-- in schema $1, for GrantRead to run: the user_profiles view; users,
-- organizations and the user raw log (a user by id, a user's history, the
-- organizations endpoints); org_activity (an organization's activity
-- windows); and schema_migrations (the api role's wait for
-- the schema; see SchemaVersion). Nothing else: not the offsets, not the
-- organization raw log, not the outbox. format's %I quotes each
-- identifier.
SELECT stmt FROM unnest(ARRAY[
    format('GRANT USAGE ON SCHEMA %I TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.user_profiles TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.users TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.organizations TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.user_events TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.org_activity TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.schema_migrations TO %I', $1::text, $2::text)
]) AS stmt
