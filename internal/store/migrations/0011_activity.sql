-- Windowed organization activity (docs/event-time.md, "Organization
-- activity"): per organization, tumbling event-time windows of user
-- events, counted inside the batch transactions (activity.go), emitted to
-- the activity topic through the outbox when the user watermark passes a
-- window's end, re-emitted as a correction when a late event within the
-- allowed lateness changes it, and emitted a last time, final, once the
-- watermark passes its end plus the allowed lateness.

-- org_activity: one row per organization and window. emitted: its first
-- result went out; final: it can change no more (too late for any event).
CREATE TABLE org_activity (
    organization_name text        NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    created           bigint      NOT NULL,
    updated           bigint      NOT NULL,
    deleted           bigint      NOT NULL,
    active_users      bigint      NOT NULL,
    emitted           boolean     NOT NULL DEFAULT false,
    final             boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (organization_name, window_start)
);
-- The firing's two questions: which windows has the watermark passed that
-- went out not yet, and which are final now.
CREATE INDEX org_activity_unemitted_idx ON org_activity (window_end) WHERE NOT emitted;
CREATE INDEX org_activity_open_idx ON org_activity (window_end) WHERE NOT final;
-- Retention deletes by end.
CREATE INDEX org_activity_end_idx ON org_activity (window_end);

-- org_activity_users: the distinct users active in each window.
CREATE TABLE org_activity_users (
    organization_name text        NOT NULL,
    window_start      timestamptz NOT NULL,
    user_id           text        NOT NULL,
    PRIMARY KEY (organization_name, window_start, user_id)
);

-- activity_window: one emitted window.
CREATE TYPE activity_window AS (
    organization_name text,
    window_start      timestamptz,
    window_end        timestamptz,
    created           bigint,
    updated           bigint,
    deleted           bigint,
    active_users      bigint,
    final             boolean,
    correction        boolean
);
ALTER TABLE changelog_outbox ADD COLUMN windows activity_window[];
ALTER TABLE changelog_outbox ALTER COLUMN windows SET STORAGE EXTERNAL;
