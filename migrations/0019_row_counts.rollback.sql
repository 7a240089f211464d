-- Reverses 0019_row_counts.
ALTER TABLE jobs DROP KEY idx_jobs_tenant_id;
DROP TRIGGER IF EXISTS row_counts_metrics_delete;
DROP TRIGGER IF EXISTS row_counts_metrics_insert;
DROP TRIGGER IF EXISTS row_counts_jobs_delete;
DROP TRIGGER IF EXISTS row_counts_jobs_insert;
DROP TRIGGER IF EXISTS row_counts_clusters_delete;
DROP TRIGGER IF EXISTS row_counts_clusters_insert;
DROP TABLE IF EXISTS row_counts;
