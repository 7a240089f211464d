-- metric_trigger becomes the original's fraction (0.8 means 80%; the evaluation compares the metric with
-- trigger x 100), so a policy saved by the original console means what it meant there. Stored policies held
-- a percent (80): divided by 100, with two more decimal places so that no stored value loses a digit.
-- depends: 0005_metrics_source

ALTER TABLE policies MODIFY metric_trigger DECIMAL(14,6) NULL;
UPDATE policies SET metric_trigger = metric_trigger / 100 WHERE metric_trigger IS NOT NULL;
