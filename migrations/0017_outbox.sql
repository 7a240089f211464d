-- The transactional outbox (issue 17): every event the app produces (job, droplet, deployment, scaling)
-- is written here in the same transaction as the state change it announces; the relay
-- (chalicelib/outbox.py) publishes unsent rows to Kafka in id order and stamps `sent_at`.
-- No foreign keys: an event about a job or cluster deleted meanwhile must still be published.
-- depends: 0006_metric_trigger_fraction

CREATE TABLE outbox (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    event_id      VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    topic         VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    partition_key VARCHAR(64)  COLLATE utf8mb4_bin NULL,
    event_type    VARCHAR(64)  NOT NULL,
    job_id        VARCHAR(64)  COLLATE utf8mb4_bin NULL,
    body          LONGTEXT     NOT NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    sent_at       DATETIME(6)  NULL,
    attempts      INT UNSIGNED NOT NULL DEFAULT 0,
    last_error    VARCHAR(512) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_outbox_event (event_id),
    KEY idx_outbox_unsent (sent_at, id),
    KEY idx_outbox_job (job_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Why a job's latest delivery failed when it was the job's own doing (not a dependency outage), and how
-- many times the sweeper handed a dead-lettered or stalled job back to the queue: the sweeper fails a job
-- only for an error of its own (or after too many redrives), never because a dependency was down.
ALTER TABLE jobs
    ADD COLUMN attempt_error TEXT NULL,
    ADD COLUMN redrives INT UNSIGNED NOT NULL DEFAULT 0;

-- Rate-limit overrides (POST /api/v1/observability/ratelimit/config) are configuration: kept here, with the
-- `limiter_config:*` Redis hashes as their cache (reloaded when Redis lost them).
CREATE TABLE limiter_overrides (
    config_key  VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    refill_rate DOUBLE       NULL,
    capacity    INT UNSIGNED NULL,
    updated_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (config_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
