"""job_sweeper: a job stuck in `processing` past the deadline is failed with the reason; others are not."""
from __future__ import annotations

from chalicelib import db
from chalicelib.functions import job_sweeper


def test_a_job_stuck_in_processing_is_failed_and_a_fresh_one_is_left(client, make_cluster):
    cluster = make_cluster()
    ids = [client.post("/api/v1/jobs", {"type": "diagnose", "parameters": {"cluster_id": cluster["id"]}}).json["job"]["id"]
           for _ in range(3)]
    stuck, fresh, queued = ids
    with db.transaction() as cur:
        cur.execute("UPDATE jobs SET status = 'processing' WHERE id IN (%s, %s)", (stuck, fresh))
        cur.execute("UPDATE jobs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id IN (%s, %s)",
                    (stuck, queued))

    result = job_sweeper.sweep()
    assert result["stuck"] == 1
    jobs = {i: client.get(f"/api/v1/jobs/{i}").json["job"] for i in ids}
    assert jobs[stuck]["status"] == "failed" and "while processing" in jobs[stuck]["error"]
    assert jobs[fresh]["status"] == "processing" and jobs[queued]["status"] == "queued"
    assert job_sweeper.sweep()["stuck"] == 0  # nothing left to sweep
