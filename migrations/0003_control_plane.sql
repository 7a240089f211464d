-- Control plane (issue 8): autoscaling policies, the scheduling catalogue of providers, deployments.
-- The original kept these in Redis only; here they are durable, and anything that belongs to a cluster
-- goes with it (ON DELETE CASCADE).
-- depends: 0001_core_schema

CREATE TABLE policies (
    id               VARCHAR(64)   NOT NULL,
    cluster_id       VARCHAR(64)   NOT NULL,
    name             VARCHAR(255)  NOT NULL,
    type             VARCHAR(16)   NOT NULL,
    min_replicas     INT UNSIGNED  NOT NULL,
    max_replicas     INT UNSIGNED  NOT NULL,
    metric_type      VARCHAR(16)   NULL,
    metric_trigger   DECIMAL(12,4) NULL,
    time_window      VARCHAR(16)   NULL,
    cost_limit       DECIMAL(12,4) NULL,
    enabled          BOOLEAN       NOT NULL DEFAULT TRUE,
    cooldown_seconds INT UNSIGNED  NOT NULL DEFAULT 300,
    version          INT UNSIGNED  NOT NULL DEFAULT 1,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY idx_policies_cluster (cluster_id, created_at),
    KEY idx_policies_enabled (enabled, cluster_id),
    CONSTRAINT fk_policies_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE,
    CONSTRAINT chk_policies_replicas CHECK (min_replicas <= max_replicas)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per autoscaled cluster: the time of its last scale action. Evaluations claim the right to
-- scale with a conditional UPDATE on this row, so two racing evaluations cannot both scale.
CREATE TABLE autoscaling_state (
    cluster_id      VARCHAR(64)  NOT NULL,
    last_scaled_at  DATETIME(6)  NULL,
    last_job_id     VARCHAR(64)  NULL,
    PRIMARY KEY (cluster_id),
    CONSTRAINT fk_autoscaling_state_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The scheduling catalogue (not the droplet providers of chalicelib/providers/, which run machines).
CREATE TABLE providers (
    name            VARCHAR(32)   NOT NULL,
    regions         JSON          NOT NULL,
    capacity        INT UNSIGNED  NOT NULL,
    used            INT UNSIGNED  NOT NULL DEFAULT 0,
    classes         JSON          NOT NULL,
    price_per_hour  DECIMAL(12,6) NOT NULL,
    created_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO providers (name, regions, capacity, used, classes, price_per_hour) VALUES
    ('simulated', '["nyc1","nyc3","sfo2","sfo3","tor1","ams3","lon1","fra1","sgp1","blr1","syd1"]', 1000, 0,
     '["s-1vcpu-1gb","s-1vcpu-2gb","s-2vcpu-2gb","s-2vcpu-4gb","s-4vcpu-8gb","s-8vcpu-16gb"]', 0.050000),
    ('digitalocean', '["nyc1","nyc3","sfo3","tor1","ams3","lon1","fra1","sgp1","blr1","syd1"]', 100, 0,
     '["s-1vcpu-1gb","s-1vcpu-2gb","s-2vcpu-2gb","s-2vcpu-4gb","s-4vcpu-8gb","s-8vcpu-16gb"]', 0.060000),
    ('aws', '["nyc1","sfo2","lon1","fra1","sgp1","syd1"]', 50, 0,
     '["s-1vcpu-1gb","s-2vcpu-4gb","s-4vcpu-8gb","s-8vcpu-16gb"]', 0.080000);

CREATE TABLE deployments (
    id              VARCHAR(64)   NOT NULL,
    cluster_id      VARCHAR(64)   NOT NULL,
    version         VARCHAR(128)  NOT NULL,
    strategy        VARCHAR(16)   NOT NULL,
    target_percent  TINYINT UNSIGNED NOT NULL,
    status          VARCHAR(16)   NOT NULL DEFAULT 'pending',
    current_percent TINYINT UNSIGNED NOT NULL DEFAULT 0,
    plan            JSON          NOT NULL,
    reason          TEXT          NULL,
    job_id          VARCHAR(64)   NULL,
    created_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY idx_deployments_cluster (cluster_id, created_at),
    CONSTRAINT fk_deployments_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE,
    CONSTRAINT chk_deployments_percent CHECK (target_percent BETWEEN 1 AND 100 AND current_percent <= 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The deployment's log: one row per step attempted (rollout or rollback), in order.
CREATE TABLE deployment_steps (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    deployment_id  VARCHAR(64)  NOT NULL,
    step           SMALLINT UNSIGNED NOT NULL,
    action         VARCHAR(16)  NOT NULL,
    percent        TINYINT UNSIGNED NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    message        TEXT         NOT NULL,
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY idx_deployment_steps_deployment (deployment_id, id),
    CONSTRAINT fk_deployment_steps_deployment FOREIGN KEY (deployment_id) REFERENCES deployments (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
