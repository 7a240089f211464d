-- Reverses 0001_core_schema.
DROP TABLE IF EXISTS metrics;
DROP TABLE IF EXISTS jobs;
DROP TABLE IF EXISTS droplets;
DROP TABLE IF EXISTS clusters;
