-- Reverses 0004_metrics_listing_indexes.
ALTER TABLE metrics
    DROP KEY idx_metrics_type_ts,
    DROP KEY idx_metrics_ts;
