-- Reverses 0021_quota_usage.
DROP TRIGGER IF EXISTS quota_usage_clusters_tenant;
DROP TRIGGER IF EXISTS quota_usage_clusters_delete;
DROP TRIGGER IF EXISTS quota_usage_deployments_delete;
DROP TRIGGER IF EXISTS quota_usage_deployments_update;
DROP TRIGGER IF EXISTS quota_usage_deployments_insert;
DROP TRIGGER IF EXISTS quota_usage_jobs_delete;
DROP TRIGGER IF EXISTS quota_usage_jobs_update;
DROP TRIGGER IF EXISTS quota_usage_jobs_insert;
DROP TRIGGER IF EXISTS quota_usage_droplets_delete;
DROP TRIGGER IF EXISTS quota_usage_droplets_update;
DROP TRIGGER IF EXISTS quota_usage_droplets_insert;
DROP TABLE IF EXISTS quota_usage;
