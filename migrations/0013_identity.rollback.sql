-- Reverses 0013_identity.
ALTER TABLE jobs DROP KEY idx_jobs_tenant, DROP COLUMN tenant_id;
ALTER TABLE droplets DROP KEY idx_droplets_tenant, DROP COLUMN tenant_id;
ALTER TABLE clusters DROP KEY idx_clusters_tenant, DROP COLUMN tenant_id;
DROP TRIGGER IF EXISTS audit_log_no_delete;
DROP TRIGGER IF EXISTS audit_log_no_update;
DROP TABLE audit_log;
DROP TABLE api_keys;
