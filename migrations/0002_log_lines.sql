-- Log lines shipped through Kafka (logs.clustergenie) by the log consumer: the store behind
-- GET /api/v1/jobs/{id}/logs. `source` (topic:partition:offset) makes a redelivered batch a no-op.
-- No foreign key to jobs: lines outlive their job, and arrive in any order.
-- depends: 0001_core_schema

CREATE TABLE log_lines (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    source       VARCHAR(191) NOT NULL,
    ts           DATETIME(6)  NOT NULL,
    level        VARCHAR(16)  NOT NULL,
    service      VARCHAR(64)  NULL,
    environment  VARCHAR(32)  NULL,
    function     VARCHAR(64)  NULL,
    request_id   VARCHAR(64)  NULL,
    job_id       VARCHAR(64)  NULL,
    trace_id     VARCHAR(64)  NULL,
    cluster_id   VARCHAR(64)  NULL,
    message      TEXT         NOT NULL,
    line         MEDIUMTEXT   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_log_lines_source (source),
    -- one job's lines in time order: a range scan on this index
    KEY idx_log_lines_job_ts (job_id, ts, id),
    KEY idx_log_lines_trace_ts (trace_id, ts),
    KEY idx_log_lines_ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
