-- Delivery at the relay's speed, claims that cannot strand mail (issues 11 and 13).

-- A claim is a lease: `sending` rows name the loop that holds them and until when. The loop
-- renews its leases while it sends; any loop re-queues an expired one, and a loop that starts
-- re-queues its own at once.
ALTER TABLE outbox
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_until timestamptz,
    -- Claimed first: 0 transactional, 1 campaign, 2 broadcast (a big broadcast never holds up
    -- a password reset or a welcome email).
    ADD COLUMN priority smallint NOT NULL DEFAULT 1,
    -- A slot the broadcast's rate limit reserved for this row (Unix seconds); NULL: none.
    ADD COLUMN rate_slot double precision,
    -- What was sent: the template version it was rendered from and the subject as sent.
    ADD COLUMN template_version text,
    ADD COLUMN subject text;

UPDATE outbox SET priority = 0 WHERE (command->>'transactional')::boolean IS TRUE;
UPDATE outbox SET priority = 2 WHERE priority = 1 AND journey_id LIKE 'broadcast:%';
UPDATE outbox SET lease_owner = 'before-leases', lease_until = claimed_at WHERE status = 'sending';

DROP INDEX IF EXISTS outbox_due_idx;
DROP INDEX IF EXISTS outbox_claimed_idx;
CREATE INDEX outbox_due_idx ON outbox (priority, next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_lease_idx ON outbox (lease_until) WHERE status = 'sending';
CREATE INDEX outbox_lease_owner_idx ON outbox (lease_owner) WHERE status = 'sending';

-- Who holds each delivery loop name: a process that restarts on the same host takes its names
-- back (and re-queues their leases) at once; a live process's names are never taken.
CREATE TABLE delivery_loops (
    name         text PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    instance     text        NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- A broadcast's rate limit across every worker: the theoretical arrival time of its next send
-- (GCRA, Unix seconds); `broadcasts.rate` is the total sends per second.
ALTER TABLE broadcasts ADD COLUMN rate_tat double precision;

-- Each broadcast's delivery progress, kept by the statement triggers below, so a progress poll
-- of a million-person broadcast reads one row instead of counting the outbox.
CREATE TABLE broadcast_counts (
    broadcast text PRIMARY KEY,
    queued    bigint NOT NULL DEFAULT 0,
    sent      bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION outbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO broadcast_counts AS c (broadcast, queued)
    SELECT substr(journey_id, 11), count(*) FROM new_rows
    WHERE journey_id LIKE 'broadcast:%' GROUP BY 1
    ON CONFLICT (broadcast) DO UPDATE SET queued = c.queued + excluded.queued;
    RETURN NULL;
END $$;

CREATE FUNCTION outbox_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO broadcast_counts AS c (broadcast, sent, failed)
    SELECT substr(n.journey_id, 11),
           count(*) FILTER (WHERE n.status = 'sent') - count(*) FILTER (WHERE o.status = 'sent'),
           count(*) FILTER (WHERE n.status = 'failed') - count(*) FILTER (WHERE o.status = 'failed')
    FROM new_rows n JOIN old_rows o USING (message_id)
    WHERE n.journey_id LIKE 'broadcast:%' AND n.status IS DISTINCT FROM o.status
      AND (n.status IN ('sent', 'failed') OR o.status IN ('sent', 'failed'))
    GROUP BY 1
    ON CONFLICT (broadcast) DO UPDATE
        SET sent = c.sent + excluded.sent, failed = c.failed + excluded.failed;
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION outbox_count_inserted();
CREATE TRIGGER outbox_counts_update AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_count_updated();

INSERT INTO broadcast_counts (broadcast, queued, sent, failed)
SELECT substr(journey_id, 11), count(*), count(*) FILTER (WHERE status = 'sent'),
       count(*) FILTER (WHERE status = 'failed')
FROM outbox WHERE journey_id LIKE 'broadcast:%' GROUP BY 1;
