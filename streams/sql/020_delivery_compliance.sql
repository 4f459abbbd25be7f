-- Delivery compliance: the global suppression list and per-person subscription topics.

-- Addresses Nudge never sends to (hard bounces, complaints, manual). Address-level, like
-- Customer.io: two people sharing an address are both stopped. Stored lower-cased.
CREATE TABLE suppressions (
    address text        PRIMARY KEY CHECK (address = lower(address)),
    reason  text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    detail  text
);

-- A person's choice per subscription topic (a template's `topic:`). No row: subscribed.
CREATE TABLE subscription_preferences (
    person     text        NOT NULL,
    topic      text        NOT NULL,
    subscribed boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person, topic)
);

-- The frequency limit counts a person's recent sent marketing messages at claim time.
CREATE INDEX outbox_person_sent_idx ON outbox (person, sent_at) WHERE status IN ('sent', 'sending');
