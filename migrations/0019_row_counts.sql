-- Flat reads at scale (issue 16): the totals that paged listings answer (GET /jobs `total`, GET /metrics
-- `total_count`, the X-Total-Count of GET /clusters) are read from counters kept here, instead of a
-- COUNT(*) whose cost grows with the rows counted. Triggers keep them in the same transaction as every
-- insert and delete of a counted row, whichever code path writes it (API, job worker, event handler,
-- cluster deletion), so a total read in the same snapshot as its page is exact.
--
-- kind/subject/part: 'clusters'/tenant/'', 'jobs'/tenant/'', 'metrics_tenant'/tenant/type and
-- 'metrics_cluster'/cluster id/type. A total is SUM(n) over a prefix of the key: at most
-- (metric types x slots) rows, whatever the number of counted rows.
-- slot: CONNECTION_ID() mod 8, so concurrent writers of one tenant increment different rows and do not wait
-- for each other's commit on a single hot counter row.
-- Triggers do not see rows removed by ON DELETE CASCADE or TRUNCATE; the app deletes children explicitly
-- (ClusterRepository.delete), and a fixture that truncates must empty row_counts too.
-- Run with writers stopped: the counters are seeded from the rows present when the triggers appear.
-- depends: 0013_identity 0017_outbox 0018_idempotency_keys

CREATE TABLE row_counts (
    kind     VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    part     VARCHAR(32)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,  -- as metrics.type compares
    slot     TINYINT UNSIGNED NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (kind, subject, part, slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TRIGGER row_counts_clusters_insert AFTER INSERT ON clusters FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES ('clusters', NEW.tenant_id, '', CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;
CREATE TRIGGER row_counts_clusters_delete AFTER DELETE ON clusters FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES ('clusters', OLD.tenant_id, '', CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE n = n - 1;

CREATE TRIGGER row_counts_jobs_insert AFTER INSERT ON jobs FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES ('jobs', NEW.tenant_id, '', CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;
CREATE TRIGGER row_counts_jobs_delete AFTER DELETE ON jobs FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES ('jobs', OLD.tenant_id, '', CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE n = n - 1;

-- A metric has no tenant column: it follows its cluster's (looked up by primary key; the foreign key
-- guarantees the cluster exists while the metric does, and ClusterRepository.delete removes metrics first).
CREATE TRIGGER row_counts_metrics_insert AFTER INSERT ON metrics FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES
        ('metrics_cluster', NEW.cluster_id, NEW.type, CONNECTION_ID() % 8, 1),
        ('metrics_tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = NEW.cluster_id), ''), NEW.type,
         CONNECTION_ID() % 8, 1)
    ON DUPLICATE KEY UPDATE n = n + 1;
CREATE TRIGGER row_counts_metrics_delete AFTER DELETE ON metrics FOR EACH ROW
    INSERT INTO row_counts (kind, subject, part, slot, n) VALUES
        ('metrics_cluster', OLD.cluster_id, OLD.type, CONNECTION_ID() % 8, -1),
        ('metrics_tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = OLD.cluster_id), ''), OLD.type,
         CONNECTION_ID() % 8, -1)
    ON DUPLICATE KEY UPDATE n = n - 1;

INSERT INTO row_counts (kind, subject, part, slot, n)
    SELECT 'clusters', tenant_id, '', 0, COUNT(*) FROM clusters GROUP BY tenant_id;
INSERT INTO row_counts (kind, subject, part, slot, n)
    SELECT 'jobs', tenant_id, '', 0, COUNT(*) FROM jobs GROUP BY tenant_id;
INSERT INTO row_counts (kind, subject, part, slot, n)
    SELECT 'metrics_cluster', cluster_id, type, 0, COUNT(*) FROM metrics GROUP BY cluster_id, type;
INSERT INTO row_counts (kind, subject, part, slot, n)
    SELECT 'metrics_tenant', c.tenant_id, m.type, 0, COUNT(*) FROM metrics m JOIN clusters c ON c.id = m.cluster_id
    GROUP BY c.tenant_id, m.type;

-- GET /jobs?sort_by=id within a tenant: the page in (tenant_id, id) order, read off an index instead of
-- sorting every job of the tenant.
ALTER TABLE jobs ADD KEY idx_jobs_tenant_id (tenant_id, id);
