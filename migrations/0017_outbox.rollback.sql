-- Reverses 0017_outbox.
DROP TABLE outbox;
