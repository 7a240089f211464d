-- Idempotency keys (issue 18): the first response to a create sent with an `Idempotency-Key`, kept 24 hours,
-- per caller. The same key with the same request replays it; with another request it is a 422.
-- `status_code` is NULL while the first request is still being served.
-- depends: 0018_quotas

CREATE TABLE idempotency_keys (
    caller       VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    idem_key     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    fingerprint  BINARY(32)   NOT NULL,
    status_code  SMALLINT UNSIGNED NULL,
    response     MEDIUMTEXT   NULL,
    created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (caller, idem_key),
    KEY idx_idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
