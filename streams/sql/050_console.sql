-- The web console's read paths (streams/console/queries.py): segment sizes over time, and the
-- indexes its searches need to stay fast with hundreds of thousands of people.

-- Each segment's size, sampled once per time bucket by whichever API process samples first.
CREATE TABLE segment_size_samples (
    segment text        NOT NULL,
    at      timestamptz NOT NULL,
    members bigint      NOT NULL,
    PRIMARY KEY (segment, at)
);

-- People search: an id or an email prefix (text_pattern_ops serves LIKE 'x%' in any collation).
CREATE INDEX people_person_prefix_idx ON people (person text_pattern_ops);
CREATE INDEX people_email_prefix_idx ON people (lower(email) text_pattern_ops);
CREATE INDEX people_updated_idx ON people (updated_at DESC);

-- Messages: the newest first, by status, and a broadcast's messages by their journey id.
CREATE INDEX outbox_created_idx ON outbox (created_at DESC);
CREATE INDEX outbox_status_created_idx ON outbox (status, created_at DESC);
CREATE INDEX outbox_journey_idx ON outbox (journey_id);

-- A person's activity, newest (by arrival) first; the activity page filtered by event name.
CREATE INDEX activity_person_id_idx ON activity (person, id DESC);
CREATE INDEX activity_event_name_idx ON activity ((input->>'name'), id DESC);

-- Opens and clicks of a campaign's messages, counted from the (few) engagement events.
CREATE INDEX message_events_status_idx ON message_events (status, message_id);
