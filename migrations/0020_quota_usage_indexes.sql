-- Quota usage without reading finished work (issue 16): a quota check (every POST /jobs, POST /droplets, and the
-- runners) counts a tenant's and a cluster's active jobs (`queued`/`processing`, of the counted types) and live
-- droplets (not `deleted`). Without these keys those counts walked every job and droplet the tenant or cluster
-- ever had (idx_jobs_tenant, idx_jobs_cluster and idx_droplets_tenant lead with the creation time), reading each
-- row: the cost of a job request grew with the tenant's history and its backlog. With them each count is a range
-- of the index alone, over the active rows only.
-- depends: 0019_row_counts

ALTER TABLE jobs
    ADD KEY idx_jobs_tenant_active (tenant_id, status, type),
    ADD KEY idx_jobs_cluster_active (cluster_id, status, type);
ALTER TABLE droplets
    ADD KEY idx_droplets_tenant_status (tenant_id, status);
