-- The projector's read models for the console and for replays: each input kept with its
-- activity line, replay-proof activity, journey provenance (steps) and where journeys are now.

-- The input itself (`nudge activity --export` writes these back out as replayable JSONL), and
-- a fingerprint of the projection that wrote the line: a projection replayed after a crash
-- (or re-decided by the person agent) inserts nothing the second time.
ALTER TABLE activity ADD COLUMN input jsonb;
ALTER TABLE activity ADD COLUMN fingerprint bytea;
CREATE UNIQUE INDEX activity_fingerprint_idx ON activity (fingerprint);
CREATE INDEX activity_kind_idx ON activity (kind, id);

-- Journey milestones keep the step they happened at and their provenance (for an exit, the
-- condition that held and the input that made it hold; for a conversion, the goal).
ALTER TABLE journey_events ADD COLUMN step text;
ALTER TABLE journey_events ADD COLUMN detail jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX journey_events_person_idx ON journey_events (person);

-- One row per journey and step taken: what the step did and, for a choice, what it saw
-- (a branch's condition with the values it read, the arm taken; a send's template and message).
-- A step seen again (a wait_until that finally holds) keeps its latest outcome.
CREATE TABLE journey_steps (
    journey_id       text        NOT NULL,
    step             text        NOT NULL,
    step_kind        text        NOT NULL DEFAULT '',
    person           text        NOT NULL,
    campaign_id      text        NOT NULL,
    campaign_version text        NOT NULL,
    at               timestamptz NOT NULL,
    reason           text        NOT NULL DEFAULT '',
    detail           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (journey_id, step)
);
CREATE INDEX journey_steps_campaign_idx ON journey_steps (campaign_id, step);
CREATE INDEX journey_steps_person_idx ON journey_steps (person);

-- Every journey as it stands now: running (and where it waits, until when) or ended (how).
-- "How many people wait at the 48 h step of welcome" is a count over the partial index.
CREATE TABLE current_journeys (
    journey_id       text PRIMARY KEY,
    person           text        NOT NULL,
    campaign_id      text        NOT NULL,
    campaign_version text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('active', 'completed', 'exited')),
    position         text,
    resume_at        timestamptz,
    entered_at       timestamptz,
    ended_at         timestamptz,
    end_reason       text        NOT NULL DEFAULT '',
    converted_at     timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX current_journeys_waiting_idx ON current_journeys (campaign_id, position)
    WHERE status = 'active';
CREATE INDEX current_journeys_person_idx ON current_journeys (person);

-- Journeys recorded before this table existed: their status from the milestones (no position).
INSERT INTO current_journeys (journey_id, person, campaign_id, campaign_version, status,
                              entered_at, ended_at, end_reason, converted_at, updated_at)
SELECT journey_id, min(person), min(campaign_id), min(campaign_version),
       CASE WHEN bool_or(event = 'exited') THEN 'exited'
            WHEN bool_or(event = 'completed') THEN 'completed'
            ELSE 'active' END,
       min(at) FILTER (WHERE event = 'entered'),
       min(at) FILTER (WHERE event IN ('completed', 'exited')),
       coalesce(min(reason) FILTER (WHERE event IN ('completed', 'exited')), ''),
       min(at) FILTER (WHERE event = 'converted'),
       max(at)
FROM journey_events
GROUP BY journey_id;
