-- Nudge's PostgreSQL schema: the delivery outbox, message timelines, journey metrics,
-- campaign versions and the activity log. Applied by streams/migrations.py, once, in order.

-- One row per message the engine decided to send. The primary key is the deterministic
-- message id, so a replayed send command inserts nothing (at-least-once upstream).
CREATE TABLE outbox (
    message_id       text PRIMARY KEY,
    person           text        NOT NULL,
    to_address       text,
    template         text        NOT NULL,
    campaign_id      text,
    campaign_version text,
    journey_id       text,
    step             text,
    command          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    smtp_response    text
);

-- The claim query scans only due, queued rows; the reaper only claimed ones.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_claimed_idx ON outbox (claimed_at) WHERE status = 'sending';
CREATE INDEX outbox_person_idx ON outbox (person, created_at);
CREATE INDEX outbox_campaign_idx ON outbox (campaign_id, status);

-- Each message's status timeline (queued, sending, retry, sent, failed, requeued, and
-- later opened/clicked). Not a foreign key: engagement events may arrive for pruned rows.
CREATE TABLE message_events (
    id         bigserial PRIMARY KEY,
    message_id text        NOT NULL,
    status     text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    detail     text
);
CREATE INDEX message_events_message_idx ON message_events (message_id, id);

-- Journey metrics: one row per (journey, event), so a replayed event counts once.
CREATE TABLE journey_events (
    journey_id       text        NOT NULL,
    event            text        NOT NULL
                     CHECK (event IN ('entered', 'completed', 'exited', 'converted')),
    person           text        NOT NULL,
    campaign_id      text        NOT NULL,
    campaign_version text        NOT NULL,
    at               timestamptz NOT NULL,
    reason           text        NOT NULL DEFAULT '',
    PRIMARY KEY (journey_id, event)
);
CREATE INDEX journey_events_campaign_idx ON journey_events (campaign_id, event);

CREATE VIEW campaign_metrics AS
SELECT
    campaign_id,
    count(*) FILTER (WHERE event = 'entered')   AS entered,
    count(*) FILTER (WHERE event = 'completed') AS completed,
    count(*) FILTER (WHERE event = 'exited')    AS exited,
    count(*) FILTER (WHERE event = 'converted') AS converted,
    count(*) FILTER (WHERE event = 'entered')
      - count(*) FILTER (WHERE event = 'completed')
      - count(*) FILTER (WHERE event = 'exited') AS in_progress
FROM journey_events
GROUP BY campaign_id;

-- Every campaign definition ever seen, so a journey can name the exact version it ran.
CREATE TABLE campaign_versions (
    campaign_id   text        NOT NULL,
    version       text        NOT NULL,
    definition    jsonb       NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, version)
);

-- The per-person activity log (events, attribute changes, journeys, messages with reasons).
CREATE TABLE activity (
    id      bigserial PRIMARY KEY,
    person  text        NOT NULL,
    at      timestamptz NOT NULL,
    kind    text        NOT NULL,
    summary text        NOT NULL DEFAULT '',
    detail  jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX activity_person_idx ON activity (person, at DESC);
