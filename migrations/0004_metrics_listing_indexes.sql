-- Listing metrics newest first (GET /api/v1/metrics) filtered by type alone, or not filtered at all,
-- walked the whole table to sort it. These indexes make both a backwards range scan; the cluster-only
-- and cluster+type listings already use idx_metrics_cluster_ts / idx_metrics_cluster_type_ts.
-- depends: 0003_control_plane

ALTER TABLE metrics
    ADD KEY idx_metrics_type_ts (type, timestamp),
    ADD KEY idx_metrics_ts (timestamp);
