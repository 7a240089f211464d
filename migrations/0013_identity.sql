-- Identity and access (issue 13): API keys, the audit log, and the tenant every cluster belongs to.
-- Existing rows belong to the tenant 'default'. Ids and tenant ids compare exactly (utf8mb4_bin).
-- depends: 0006_metric_trigger_fraction

-- An API key is stored only as the SHA-256 of its secret; `prefix` is the public part shown in lists and
-- used to find the row (`cgk_<prefix>_<secret>`).
CREATE TABLE api_keys (
    id            VARCHAR(64)   COLLATE utf8mb4_bin NOT NULL,
    prefix        VARCHAR(16)   COLLATE utf8mb4_bin NOT NULL,
    secret_hash   BINARY(32)    NOT NULL,
    name          VARCHAR(128)  NOT NULL,
    tenant_id     VARCHAR(64)   COLLATE utf8mb4_bin NOT NULL,
    role          VARCHAR(16)   NOT NULL,
    created_by    VARCHAR(128)  COLLATE utf8mb4_bin NULL,
    expires_at    DATETIME(6)   NULL,
    last_used_at  DATETIME(6)   NULL,
    revoked_at    DATETIME(6)   NULL,
    created_at    DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_prefix (prefix),
    KEY idx_api_keys_tenant (tenant_id, created_at),
    CONSTRAINT chk_api_keys_role CHECK (role IN ('viewer', 'operator', 'admin'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every mutation through the API: who, in which tenant, what, on which resource, with which outcome.
-- The app only appends (INSERT) and reads (SELECT) it; the triggers below refuse UPDATE and DELETE to
-- anyone (retention is an operator's TRUNCATE or partition drop, which they do not see).
CREATE TABLE audit_log (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    occurred_at   DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    tenant_id     VARCHAR(64)   COLLATE utf8mb4_bin NOT NULL,
    principal     VARCHAR(128)  COLLATE utf8mb4_bin NOT NULL,
    role          VARCHAR(16)   NOT NULL,
    action        VARCHAR(128)  NOT NULL,
    resource_id   VARCHAR(128)  COLLATE utf8mb4_bin NULL,
    outcome       SMALLINT UNSIGNED NOT NULL,
    request_id    VARCHAR(128)  COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (id),
    KEY idx_audit_tenant_time (tenant_id, occurred_at),
    KEY idx_audit_principal_time (principal, occurred_at),
    KEY idx_audit_resource (resource_id, occurred_at),
    KEY idx_audit_time (occurred_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only';
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only';

ALTER TABLE clusters ADD COLUMN tenant_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL DEFAULT 'default' AFTER id,
    ADD KEY idx_clusters_tenant (tenant_id, created_at, id);
-- Droplets and jobs may exist without a cluster; they carry their own tenant (the cluster's when they have one).
ALTER TABLE droplets ADD COLUMN tenant_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL DEFAULT 'default' AFTER id,
    ADD KEY idx_droplets_tenant (tenant_id, created_at);
ALTER TABLE jobs ADD COLUMN tenant_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL DEFAULT 'default' AFTER id,
    ADD KEY idx_jobs_tenant (tenant_id, created_at);
