-- Reverses 0006_metric_trigger_fraction: back to percents.
UPDATE policies SET metric_trigger = metric_trigger * 100 WHERE metric_trigger IS NOT NULL;
ALTER TABLE policies MODIFY metric_trigger DECIMAL(12,4) NULL;
