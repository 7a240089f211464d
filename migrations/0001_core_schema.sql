-- Core schema: clusters, droplets, jobs, metrics.
-- Differences from the original 000001_init: created_at/updated_at everywhere, a `version` column for
-- optimistic concurrency on clusters and jobs, uuid-based ids, and indexes for the hot reads
-- (jobs by created_at; latest metric per cluster and type).

CREATE TABLE clusters (
    id            VARCHAR(64)  NOT NULL,
    name          VARCHAR(255) NOT NULL,
    region        VARCHAR(32)  NOT NULL,
    status        VARCHAR(16)  NOT NULL DEFAULT 'healthy',
    last_checked  DATETIME(6)  NULL,
    version       INT UNSIGNED NOT NULL DEFAULT 1,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY idx_clusters_created (created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE droplets (
    id                    VARCHAR(64)  NOT NULL,
    cluster_id            VARCHAR(64)  NULL,
    name                  VARCHAR(255) NOT NULL,
    region                VARCHAR(32)  NOT NULL,
    provider              VARCHAR(32)  NOT NULL DEFAULT 'simulated',
    size                  VARCHAR(32)  NOT NULL,
    image                 VARCHAR(128) NOT NULL,
    status                VARCHAR(16)  NOT NULL DEFAULT 'provisioning',
    ip_address            VARCHAR(45)  NULL,
    provider_instance_id  VARCHAR(64)  NULL,
    version               INT UNSIGNED NOT NULL DEFAULT 1,
    created_at            DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at            DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY idx_droplets_cluster_status (cluster_id, status),
    KEY idx_droplets_created (created_at, id),
    CONSTRAINT fk_droplets_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE jobs (
    id            VARCHAR(64)  NOT NULL,
    cluster_id    VARCHAR(64)  NOT NULL,
    type          VARCHAR(16)  NOT NULL,
    status        VARCHAR(16)  NOT NULL DEFAULT 'queued',
    trace_id      VARCHAR(64)  NOT NULL,
    progress      TINYINT UNSIGNED NOT NULL DEFAULT 0,
    parameters    JSON         NOT NULL,
    result        JSON         NULL,
    error         TEXT         NULL,
    version       INT UNSIGNED NOT NULL DEFAULT 1,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    started_at    DATETIME(6)  NULL,
    completed_at  DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY idx_jobs_created (created_at, id),
    KEY idx_jobs_status_updated (status, updated_at),
    KEY idx_jobs_cluster (cluster_id, created_at),
    CONSTRAINT fk_jobs_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE,
    CONSTRAINT chk_jobs_progress CHECK (progress <= 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE metrics (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    cluster_id  VARCHAR(64)  NOT NULL,
    type        VARCHAR(16)  NOT NULL,
    value       DOUBLE       NOT NULL,
    unit        VARCHAR(8)   NOT NULL,
    timestamp   DATETIME(6)  NOT NULL,
    created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- "latest metric per cluster and type" is a backwards index lookup on this key
    KEY idx_metrics_cluster_type_ts (cluster_id, type, timestamp),
    KEY idx_metrics_cluster_ts (cluster_id, timestamp),
    CONSTRAINT fk_metrics_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
