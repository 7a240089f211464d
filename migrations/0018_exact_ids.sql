-- Exact ids (issue 18): every id column compares byte for byte (utf8mb4_bin), so `cluster-ABC` and
-- `cluster-abc` are different ids in the database exactly as they are in Python (dict lookups, limiter
-- scopes, cool-downs). Before this, the tables' utf8mb4_unicode_ci matched ids regardless of letter case:
-- GET /clusters/<ID IN CAPITALS> answered 200, case variants slipped past per-cluster limits, and a droplet
-- stored with a case variant of its cluster's id made GET /clusters fail with a KeyError.
-- A case-insensitive unique index admits no two case variants, so every stored id stays unique under _bin.
-- depends: 0006_metric_trigger_fraction

-- The foreign keys between id columns go first (MariaDB refuses to change a column one uses, even with
-- foreign_key_checks off) and come back, validated, once both sides compare alike.

ALTER TABLE droplets DROP FOREIGN KEY fk_droplets_cluster;
ALTER TABLE jobs DROP FOREIGN KEY fk_jobs_cluster;
ALTER TABLE metrics DROP FOREIGN KEY fk_metrics_cluster;
ALTER TABLE policies DROP FOREIGN KEY fk_policies_cluster;
ALTER TABLE autoscaling_state DROP FOREIGN KEY fk_autoscaling_state_cluster;
ALTER TABLE deployments DROP FOREIGN KEY fk_deployments_cluster;
ALTER TABLE deployment_steps DROP FOREIGN KEY fk_deployment_steps_deployment;

ALTER TABLE clusters
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE droplets
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY provider_instance_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
ALTER TABLE jobs
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY trace_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE metrics
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE log_lines
    MODIFY request_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY job_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY trace_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
ALTER TABLE policies
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE autoscaling_state
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY last_job_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
ALTER TABLE deployments
    MODIFY id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY cluster_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY job_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
ALTER TABLE deployment_steps
    MODIFY deployment_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

ALTER TABLE droplets ADD CONSTRAINT fk_droplets_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD CONSTRAINT fk_jobs_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE metrics ADD CONSTRAINT fk_metrics_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE policies ADD CONSTRAINT fk_policies_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE autoscaling_state ADD CONSTRAINT fk_autoscaling_state_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE deployments ADD CONSTRAINT fk_deployments_cluster FOREIGN KEY (cluster_id) REFERENCES clusters (id) ON DELETE CASCADE;
ALTER TABLE deployment_steps ADD CONSTRAINT fk_deployment_steps_deployment FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE;
