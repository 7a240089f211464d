-- Reverses 0018_idempotency_keys.
DROP TABLE IF EXISTS idempotency_keys;
