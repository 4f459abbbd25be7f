-- Read models projected from the person agent's Activity and PersonSnapshot commands, the
-- event catalog, and the progress of partition scans (broadcasts and segment backfills).

-- Each person's profile as of their last snapshot. Erased on delete, suppress and merge.
CREATE TABLE people (
    person       text PRIMARY KEY,
    email        text,
    attributes   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    suppressed   boolean     NOT NULL DEFAULT false,
    unsubscribed boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX people_email_idx ON people (email);

-- Who is in each segment now, and since when.
CREATE TABLE segment_members (
    segment    text        NOT NULL,
    person     text        NOT NULL,
    entered_at timestamptz NOT NULL,
    PRIMARY KEY (segment, person)
);
CREATE INDEX segment_members_person_idx ON segment_members (person);

-- Every event name, and each of its properties with the JSON type seen; property '' is the
-- event itself (its count is the number of events).
CREATE TABLE event_catalog (
    event      text        NOT NULL,
    type       text        NOT NULL,
    property   text        NOT NULL,
    json_type  text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    count      bigint      NOT NULL,
    PRIMARY KEY (event, type, property, json_type)
);

-- A scan of every partition's people: a broadcast (send a campaign's template to a segment)
-- or a re-evaluation backfill after segment definitions changed.
CREATE TABLE broadcasts (
    id         text PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('broadcast', 'reevaluate')),
    campaign   text,
    template   text,
    segment    text,
    partitions integer     NOT NULL,
    rate       double precision,
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Per partition: people scanned, inputs or sends enqueued, the last key done (a restarted scan
-- resumes after it), and whether the partition is finished.
CREATE TABLE broadcast_progress (
    broadcast  text        NOT NULL,
    partition  integer     NOT NULL,
    scanned    bigint      NOT NULL DEFAULT 0,
    enqueued   bigint      NOT NULL DEFAULT 0,
    done       boolean     NOT NULL DEFAULT false,
    last_key   text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast, partition)
);

-- Each segment definition version seen by a worker; the first to record one starts its backfill.
CREATE TABLE segment_definitions (
    segment     text        NOT NULL,
    definition  text        NOT NULL,
    backfill    text,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment, definition)
);
