-- Quota usage from counters (issue 16): a quota check (every POST /jobs, POST /droplets, POST /deployments/start,
-- and again as the job runs) compared the limits with COUNT(*)s over the tenant's and the cluster's live droplets,
-- active jobs and active deployments: a range of 0020's indexes per count, so the check's cost grew with the
-- scope's usage (a tenant with raised quotas and 2,000 queued jobs read ~2,000 index entries per job submitted
-- and again per job run). Triggers keep that usage here, in the same transaction as every write of a counted
-- row, whichever code path writes it; a check reads SUM(n) over one primary-key prefix (at most job types x
-- slots rows), whatever the usage.
--
-- This file is the one definition of what counts against a quota:
--   live_droplets      droplets with status <> 'deleted'                               (part '')
--   active_jobs        jobs with status IN ('queued', 'processing'), per job type      (part = type; the
--                      check sums the types it counts, services/quotas.py COUNTED_JOB_TYPES)
--   active_deployments deployments with status IN ('pending', 'running', 'rolling_back')  (part '')
-- each per scope 'cluster' (subject = cluster id; a droplet without a cluster counts for its tenant only) and
-- 'tenant' (subject = tenant id; droplets and jobs carry their tenant, a deployment counts for its cluster's).
-- slot: CONNECTION_ID() mod 8, as in 0019, so concurrent writers of one scope increment different rows and do
-- not wait for each other's commit on one hot counter row.
--
-- Status moves into and out of the counted set, deletes, and changes of a row's cluster, tenant or type (the
-- app makes none) are counted by the AFTER UPDATE/DELETE triggers; an UPDATE that moves nothing (progress,
-- `processing` -> still active, `active` droplet getting its IP) writes no counter. Rows that a cluster's
-- deletion removes by ON DELETE CASCADE fire no trigger: the cluster's BEFORE DELETE trigger takes them out of
-- their tenant's counters first and drops the cluster's own. A cluster never changes tenant (its droplets and
-- jobs carry that tenant too; its deployments' and metrics' counters follow it): the database refuses it.
-- TRUNCATE is not seen either: a fixture that truncates a counted table must empty quota_usage too.
-- Run with writers stopped: the counters are seeded from the rows present when the triggers appear.
-- depends: 0020_quota_usage_indexes

CREATE TABLE quota_usage (
    scope    VARCHAR(8)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind     VARCHAR(24)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    part     VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,  -- as jobs.type compares
    slot     TINYINT UNSIGNED NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (scope, subject, kind, part, slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Droplets: a droplet without a cluster (cluster_id NULL) counts for its tenant only.
CREATE TRIGGER quota_usage_droplets_insert AFTER INSERT ON droplets FOR EACH ROW
BEGIN
    IF NEW.status <> 'deleted' THEN
        IF NEW.cluster_id IS NULL THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('tenant', NEW.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, 1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        ELSE
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', NEW.cluster_id, 'live_droplets', '', CONNECTION_ID() % 8, 1),
                ('tenant', NEW.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, 1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
    END IF;
END;

CREATE TRIGGER quota_usage_droplets_update AFTER UPDATE ON droplets FOR EACH ROW
BEGIN
    -- Most updates (an IP address, `provisioning` -> `active`) move no counter: one comparison, nothing written.
    IF NOT (OLD.status <=> NEW.status AND OLD.cluster_id <=> NEW.cluster_id AND OLD.tenant_id <=> NEW.tenant_id) THEN
        IF OLD.status <> 'deleted' AND NOT (NEW.status <> 'deleted' AND OLD.cluster_id <=> NEW.cluster_id
                                            AND OLD.tenant_id = NEW.tenant_id) THEN
            IF OLD.cluster_id IS NULL THEN
                INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                    ('tenant', OLD.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, -1)
                ON DUPLICATE KEY UPDATE n = n + VALUES(n);
            ELSE
                INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                    ('cluster', OLD.cluster_id, 'live_droplets', '', CONNECTION_ID() % 8, -1),
                    ('tenant', OLD.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, -1)
                ON DUPLICATE KEY UPDATE n = n + VALUES(n);
            END IF;
        END IF;
        IF NEW.status <> 'deleted' AND NOT (OLD.status <> 'deleted' AND OLD.cluster_id <=> NEW.cluster_id
                                            AND OLD.tenant_id = NEW.tenant_id) THEN
            IF NEW.cluster_id IS NULL THEN
                INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                    ('tenant', NEW.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, 1)
                ON DUPLICATE KEY UPDATE n = n + VALUES(n);
            ELSE
                INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                    ('cluster', NEW.cluster_id, 'live_droplets', '', CONNECTION_ID() % 8, 1),
                    ('tenant', NEW.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, 1)
                ON DUPLICATE KEY UPDATE n = n + VALUES(n);
            END IF;
        END IF;
    END IF;
END;

CREATE TRIGGER quota_usage_droplets_delete AFTER DELETE ON droplets FOR EACH ROW
BEGIN
    IF OLD.status <> 'deleted' THEN
        IF OLD.cluster_id IS NULL THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('tenant', OLD.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, -1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        ELSE
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', OLD.cluster_id, 'live_droplets', '', CONNECTION_ID() % 8, -1),
                ('tenant', OLD.tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, -1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
    END IF;
END;

-- Jobs: every job has a cluster; counted per type.
CREATE TRIGGER quota_usage_jobs_insert AFTER INSERT ON jobs FOR EACH ROW
BEGIN
    IF NEW.status IN ('queued', 'processing') THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
            ('cluster', NEW.cluster_id, 'active_jobs', NEW.type, CONNECTION_ID() % 8, 1),
            ('tenant', NEW.tenant_id, 'active_jobs', NEW.type, CONNECTION_ID() % 8, 1)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
END;

CREATE TRIGGER quota_usage_jobs_update AFTER UPDATE ON jobs FOR EACH ROW
BEGIN
    -- Most updates (progress, a result, `queued` -> `processing`) move no counter: one comparison, nothing written.
    IF NOT (OLD.status <=> NEW.status AND OLD.cluster_id <=> NEW.cluster_id AND OLD.tenant_id <=> NEW.tenant_id
            AND OLD.type <=> NEW.type) THEN
        IF OLD.status IN ('queued', 'processing') AND NOT (NEW.status IN ('queued', 'processing')
                AND OLD.cluster_id = NEW.cluster_id AND OLD.tenant_id = NEW.tenant_id AND OLD.type = NEW.type) THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', OLD.cluster_id, 'active_jobs', OLD.type, CONNECTION_ID() % 8, -1),
                ('tenant', OLD.tenant_id, 'active_jobs', OLD.type, CONNECTION_ID() % 8, -1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
        IF NEW.status IN ('queued', 'processing') AND NOT (OLD.status IN ('queued', 'processing')
                AND OLD.cluster_id = NEW.cluster_id AND OLD.tenant_id = NEW.tenant_id AND OLD.type = NEW.type) THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', NEW.cluster_id, 'active_jobs', NEW.type, CONNECTION_ID() % 8, 1),
                ('tenant', NEW.tenant_id, 'active_jobs', NEW.type, CONNECTION_ID() % 8, 1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
    END IF;
END;

CREATE TRIGGER quota_usage_jobs_delete AFTER DELETE ON jobs FOR EACH ROW
BEGIN
    IF OLD.status IN ('queued', 'processing') THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
            ('cluster', OLD.cluster_id, 'active_jobs', OLD.type, CONNECTION_ID() % 8, -1),
            ('tenant', OLD.tenant_id, 'active_jobs', OLD.type, CONNECTION_ID() % 8, -1)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
END;

-- Deployments carry no tenant: a deployment counts for its cluster's (looked up by primary key when, and only
-- when, a counter moves; the foreign key guarantees the cluster exists while the deployment does).
CREATE TRIGGER quota_usage_deployments_insert AFTER INSERT ON deployments FOR EACH ROW
BEGIN
    IF NEW.status IN ('pending', 'running', 'rolling_back') THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
            ('cluster', NEW.cluster_id, 'active_deployments', '', CONNECTION_ID() % 8, 1),
            ('tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = NEW.cluster_id), ''), 'active_deployments', '',
             CONNECTION_ID() % 8, 1)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
END;

CREATE TRIGGER quota_usage_deployments_update AFTER UPDATE ON deployments FOR EACH ROW
BEGIN
    -- Most updates (progress, the job's id, `pending` -> `running`) move no counter.
    IF NOT (OLD.status <=> NEW.status AND OLD.cluster_id <=> NEW.cluster_id) THEN
        IF OLD.status IN ('pending', 'running', 'rolling_back') AND NOT (
                NEW.status IN ('pending', 'running', 'rolling_back') AND OLD.cluster_id = NEW.cluster_id) THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', OLD.cluster_id, 'active_deployments', '', CONNECTION_ID() % 8, -1),
                ('tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = OLD.cluster_id), ''), 'active_deployments',
                 '', CONNECTION_ID() % 8, -1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
        IF NEW.status IN ('pending', 'running', 'rolling_back') AND NOT (
                OLD.status IN ('pending', 'running', 'rolling_back') AND OLD.cluster_id = NEW.cluster_id) THEN
            INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
                ('cluster', NEW.cluster_id, 'active_deployments', '', CONNECTION_ID() % 8, 1),
                ('tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = NEW.cluster_id), ''), 'active_deployments',
                 '', CONNECTION_ID() % 8, 1)
            ON DUPLICATE KEY UPDATE n = n + VALUES(n);
        END IF;
    END IF;
END;

CREATE TRIGGER quota_usage_deployments_delete AFTER DELETE ON deployments FOR EACH ROW
BEGIN
    IF OLD.status IN ('pending', 'running', 'rolling_back') THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
            ('cluster', OLD.cluster_id, 'active_deployments', '', CONNECTION_ID() % 8, -1),
            ('tenant', COALESCE((SELECT tenant_id FROM clusters WHERE id = OLD.cluster_id), ''), 'active_deployments', '',
             CONNECTION_ID() % 8, -1)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
END;

-- A cluster's deletion: its droplets, jobs and deployments that are still there go by ON DELETE CASCADE, which
-- fires none of their triggers (ClusterRepository.delete deletes droplets and jobs first, so only deployments
-- remain then; a DELETE FROM clusters by hand leaves everything to the cascade). Before the row goes, what the
-- cascade will remove leaves its tenant's counters, and the cluster's own counters go: a cluster that does not
-- exist has no usage. The cluster's counters say what there is to take out (they count exactly the rows the
-- cascade will remove), so a cluster with nothing counted left, the usual case, reads no child row. Every read
-- here is a locking one, of the latest committed rows: a writer that committed a child after this transaction's
-- snapshot was taken is not missed (new children wait for the cluster row, which this DELETE holds).
CREATE TRIGGER quota_usage_clusters_delete BEFORE DELETE ON clusters FOR EACH ROW
BEGIN
    DECLARE counter_rows, live_droplets, active_jobs, active_deployments BIGINT;
    SELECT COUNT(*), COALESCE(SUM(IF(kind = 'live_droplets', n, 0)), 0), COALESCE(SUM(IF(kind = 'active_jobs', n, 0)), 0),
           COALESCE(SUM(IF(kind = 'active_deployments', n, 0)), 0)
    INTO counter_rows, live_droplets, active_jobs, active_deployments
    FROM quota_usage WHERE scope = 'cluster' AND subject = OLD.id FOR UPDATE;
    IF live_droplets <> 0 THEN
        -- (Summed over the cluster's droplets rather than filtered by status <> 'deleted': MariaDB 10.11 reads
        -- that range slowly once the transaction has delete-marked the droplets, 40 ms per cluster at 12,000.)
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
            SELECT 'tenant', tenant_id, 'live_droplets', '', CONNECTION_ID() % 8, -SUM(status <> 'deleted')
            FROM droplets WHERE cluster_id = OLD.id GROUP BY tenant_id HAVING SUM(status <> 'deleted') > 0
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
    IF active_jobs <> 0 THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
            SELECT 'tenant', tenant_id, 'active_jobs', type, CONNECTION_ID() % 8, -COUNT(*) FROM jobs
            WHERE cluster_id = OLD.id AND status IN ('queued', 'processing') GROUP BY tenant_id, type
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
    IF active_deployments <> 0 THEN
        INSERT INTO quota_usage (scope, subject, kind, part, slot, n) VALUES
            ('tenant', OLD.tenant_id, 'active_deployments', '', CONNECTION_ID() % 8, -active_deployments)
        ON DUPLICATE KEY UPDATE n = n + VALUES(n);
    END IF;
    IF counter_rows > 0 THEN
        DELETE FROM quota_usage WHERE scope = 'cluster' AND subject = OLD.id;
    END IF;
END;

CREATE TRIGGER quota_usage_clusters_tenant BEFORE UPDATE ON clusters FOR EACH ROW
BEGIN
    IF NOT (OLD.tenant_id <=> NEW.tenant_id) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a cluster does not change tenant (quota_usage, row_counts)';
    END IF;
END;

INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'cluster', cluster_id, 'live_droplets', '', 0, COUNT(*) FROM droplets
    WHERE cluster_id IS NOT NULL AND status <> 'deleted' GROUP BY cluster_id;
INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'tenant', tenant_id, 'live_droplets', '', 0, COUNT(*) FROM droplets
    WHERE status <> 'deleted' GROUP BY tenant_id;
INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'cluster', cluster_id, 'active_jobs', type, 0, COUNT(*) FROM jobs
    WHERE status IN ('queued', 'processing') GROUP BY cluster_id, type
ON DUPLICATE KEY UPDATE n = n + VALUES(n);
INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'tenant', tenant_id, 'active_jobs', type, 0, COUNT(*) FROM jobs
    WHERE status IN ('queued', 'processing') GROUP BY tenant_id, type
ON DUPLICATE KEY UPDATE n = n + VALUES(n);
INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'cluster', cluster_id, 'active_deployments', '', 0, COUNT(*) FROM deployments
    WHERE status IN ('pending', 'running', 'rolling_back') GROUP BY cluster_id;
INSERT INTO quota_usage (scope, subject, kind, part, slot, n)
    SELECT 'tenant', c.tenant_id, 'active_deployments', '', 0, COUNT(*) FROM deployments d
    JOIN clusters c ON c.id = d.cluster_id
    WHERE d.status IN ('pending', 'running', 'rolling_back') GROUP BY c.tenant_id;
