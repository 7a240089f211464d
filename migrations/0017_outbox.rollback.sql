-- Reverses 0017_outbox.
DROP TABLE limiter_overrides;
ALTER TABLE jobs
    DROP COLUMN redrives,
    DROP COLUMN attempt_error;
DROP TABLE outbox;
