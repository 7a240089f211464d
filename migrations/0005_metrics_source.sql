-- Telemetry rows written by the event handler carry the identity of the sample they came from (an MD5
-- of "<event ledger key>:<sample index>"), unique: a batch applied again after a crash between the
-- commit and the ledger mark inserts nothing twice. Rows from other writers leave it NULL (not unique).
-- depends: 0004_metrics_listing_indexes

ALTER TABLE metrics
    ADD COLUMN source_hash BINARY(16) NULL,
    ADD UNIQUE KEY uq_metrics_source (source_hash);
