-- Reverses 0020_quota_usage_indexes.
ALTER TABLE droplets DROP KEY idx_droplets_tenant_status;
ALTER TABLE jobs DROP KEY idx_jobs_cluster_active, DROP KEY idx_jobs_tenant_active;
