-- The campaign page counts per step from indexes alone (index-only scans): the branch arms
-- journeys took, and each send step's messages by status (with their ids, to join the opens and
-- clicks without reading the wide outbox rows).
CREATE INDEX journey_steps_arm_idx ON journey_steps (campaign_id, step, (detail->>'arm'))
    WHERE detail ? 'arm';
CREATE INDEX outbox_campaign_step_idx ON outbox (campaign_id, step, template, status) INCLUDE (message_id);
