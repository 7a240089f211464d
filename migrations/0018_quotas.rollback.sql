-- Reverses 0018_quotas.
DROP TABLE IF EXISTS quotas;
