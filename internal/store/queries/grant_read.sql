-- The statements that give role $2 read-only access to what the API reads
-- in schema $1, for GrantRead to run: the user_profiles view (a view reads
-- its tables with its owner's rights, so users and organizations need no
-- grant of their own) and schema_migrations (the api role's wait for the
-- schema; see SchemaVersion). format's %I quotes each identifier.
SELECT stmt FROM unnest(ARRAY[
    format('GRANT USAGE ON SCHEMA %I TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.user_profiles TO %I', $1::text, $2::text),
    format('GRANT SELECT ON %I.schema_migrations TO %I', $1::text, $2::text)
]) AS stmt
