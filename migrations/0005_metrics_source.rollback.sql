-- Reverses 0005_metrics_source.
ALTER TABLE metrics
    DROP KEY uq_metrics_source,
    DROP COLUMN source_hash;
