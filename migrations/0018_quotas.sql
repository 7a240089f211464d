-- Quotas (issue 18): limits set by an admin per tenant or per cluster, overriding the built-in defaults of
-- chalicelib/services/quotas.py one limit at a time. A limit with no row here takes the default.
-- depends: 0018_exact_ids

CREATE TABLE quotas (
    scope_type  VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    scope_id    VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    limit_name  VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    value       INT UNSIGNED NOT NULL,
    updated_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (scope_type, scope_id, limit_name),
    CONSTRAINT chk_quotas_scope_type CHECK (scope_type IN ('tenant', 'cluster'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
