"""Concurrent batches for LocalStack's SQS event source mappings, as AWS runs them.

On AWS an SQS event source mapping polls with several pollers at once and invokes the function with up to
`ScalingConfig.MaximumConcurrency` batches in parallel (without it: 5 pollers to start with, scaling up with
the backlog). LocalStack (localstack-core 2026.3) runs every mapping in one thread that receives a batch,
invokes the function synchronously, deletes what succeeded and only then polls again: one batch at a time,
whatever the settings (it reads no `ScalingConfig` at all).

`install()` (called when LocalStack loads this executor, which is before any mapping exists: functions are
created first) makes one poll of a *standard* queue's mapping run that many receive-invoke-delete rounds at
once, each exactly LocalStack's own (`SqsPoller.poll_events`, unchanged), and return when all are done. FIFO
queues keep one batch at a time (their message-group order). `CG_ESM_SQS_CONCURRENCY` caps it (1 turns it
off). What it cannot do: scale the number of batches with the backlog over minutes as AWS does (it uses the
maximum from the start), or start a new batch before the slowest of a round has finished.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os

LOG = logging.getLogger(__name__)

# AWS's SQS mappings start with five concurrent pollers when no MaximumConcurrency is set.
AWS_INITIAL_POLLERS = 5
_installed = False


def concurrency_for(esm_config: dict) -> int:
    """How many batches of this mapping may run at once: its MaximumConcurrency (else AWS's initial 5),
    capped by CG_ESM_SQS_CONCURRENCY when set."""
    wanted = (esm_config.get("ScalingConfig") or {}).get("MaximumConcurrency") or AWS_INITIAL_POLLERS
    cap = os.environ.get("CG_ESM_SQS_CONCURRENCY")
    return max(1, min(int(wanted), int(cap)) if cap else int(wanted))


def install() -> None:
    global _installed
    if _installed:
        return
    from localstack.services.lambda_.event_source_mapping import esm_worker_factory
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    one_batch = SqsPoller.poll_events
    build = esm_worker_factory.EsmWorkerFactory.get_esm_worker

    def get_esm_worker(factory):  # noqa: ANN001, ANN202
        worker = build(factory)
        if isinstance(worker.poller, SqsPoller):
            worker.poller.cg_concurrency = concurrency_for(factory.esm_config)
        return worker

    def poll_events(poller) -> None:  # noqa: ANN001
        rounds = getattr(poller, "cg_concurrency", 1)
        if rounds <= 1 or poller.is_fifo_queue:
            return one_batch(poller)
        with cf.ThreadPoolExecutor(rounds, thread_name_prefix="esm-sqs-batch") as pool:
            futures = [pool.submit(one_batch, poller) for _ in range(rounds)]
        errors = [f.exception() for f in futures]
        if all(isinstance(e, EmptyPollResultsException) for e in errors):
            raise errors[0]  # the queue is empty: LocalStack's idle back-off applies
        failures = [e for e in errors if e is not None and not isinstance(e, EmptyPollResultsException)]
        if failures:
            raise failures[0]  # e.g. the queue is gone: LocalStack's error back-off applies

    esm_worker_factory.EsmWorkerFactory.get_esm_worker = get_esm_worker
    SqsPoller.poll_events = poll_events
    _installed = True
    LOG.info("SQS event source mappings run up to MaximumConcurrency batches at once")
