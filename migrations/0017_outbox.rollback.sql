-- Reverses 0017_outbox.
ALTER TABLE jobs
    DROP COLUMN redrives,
    DROP COLUMN attempt_error;
DROP TABLE outbox;
