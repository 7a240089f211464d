"""Concurrent batches for LocalStack's SQS event source mappings, as AWS runs them.

On AWS an SQS event source mapping polls with several pollers at once and invokes the function with up to
`ScalingConfig.MaximumConcurrency` batches in parallel (without it: 5 pollers to start with, scaling up with
the backlog), with no pause while messages wait. LocalStack (localstack-core 2026.3) runs every mapping in one
thread that receives a batch, invokes the function synchronously, deletes what succeeded and only then polls
again: one batch at a time, whatever the settings (it reads no `ScalingConfig` at all).

`install()` (called when LocalStack loads this executor, which is before any mapping exists: functions are
created first) changes one poll of a *standard* queue's mapping (`drain`):

- one receive first, as LocalStack's own: an empty queue costs one `ReceiveMessage` per poll (a long poll when
  the mapping has a batching window), then LocalStack's idle back-off, not one per concurrent slot;
- as soon as that receive returns messages, slots run LocalStack's own receive-invoke-delete round
  (`SqsPoller.poll_events`, unchanged) again and again until the queue is empty for them or the mapping is
  stopped: a slot starts its next batch when its own ends, never waiting for the slowest of the others;
- slots are added as AWS adds concurrency, with the backlog: a second one when the first receive brought
  messages, one more each time a batch ends while messages wait, up to `MaximumConcurrency`.

FIFO queues keep one batch at a time (their message-group order). `CG_ESM_SQS_CONCURRENCY` caps the slots (1
turns all this off). What it cannot do: scale the number of batches with the backlog over minutes as AWS does
(it adds a slot per finished batch while messages wait, not per minute).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading

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


def drain(one_batch, slots: int, found: threading.Event, stopped: threading.Event, empty: type[Exception]) -> None:
    """One poll of a mapping with up to `slots` concurrent batches (see the module docstring).

    `one_batch()` is LocalStack's receive-invoke-delete round: it raises `empty` when it received nothing, and
    sets `found` once messages came back (before the function is invoked). Raises `empty` when the first receive
    found the queue empty (LocalStack's idle back-off applies), the first other error of any slot after all have
    ended (its error back-off applies), else returns when every slot has found the queue empty or `stopped` is set.

    Slots are added as AWS adds concurrency, with the backlog: a second one when the first receive brought
    messages, then one more each time a batch ends while messages wait, up to `slots`. So execution environments
    start one or two at a time (each one's cold start runs inside its first batch, and ten at once on a small
    machine can each take longer than the function's timeout), and the others join once batches are flowing.
    """
    found.clear()
    lock = threading.Lock()
    futures: list[cf.Future] = []

    with cf.ThreadPoolExecutor(slots, thread_name_prefix="esm-sqs-batch") as pool:
        def add_slot() -> None:
            with lock:
                if len(futures) < slots and not stopped.is_set():
                    futures.append(pool.submit(slot, False))

        def slot(first: bool) -> None:
            while not stopped.is_set():
                try:
                    one_batch()
                except empty:
                    if first and not found.is_set():
                        raise
                    return
                first = False
                add_slot()  # a batch ended and the queue had messages: one more slot

        with lock:
            futures.append(pool.submit(slot, True))
        # A second slot as soon as the first receive brought messages (not for an empty queue).
        while not found.wait(0.05):
            if futures[0].done():
                break
        if found.is_set():
            add_slot()
        while True:
            with lock:
                pending = [f for f in futures if not f.done()]
            if not pending:
                break
            cf.wait(pending, timeout=0.1)
    errors = [f.exception() for f in futures]
    if isinstance(errors[0], empty) and len(futures) == 1:
        raise errors[0]
    failures = [e for e in errors if e is not None and not isinstance(e, empty)]
    if failures:
        raise failures[0]  # e.g. the queue is gone: LocalStack's error back-off applies


def install() -> None:
    global _installed
    if _installed:
        return
    from localstack.services.lambda_.event_source_mapping import esm_worker_factory
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    one_batch = SqsPoller.poll_events
    handle_messages = SqsPoller.handle_messages
    build = esm_worker_factory.EsmWorkerFactory.get_esm_worker

    def get_esm_worker(factory):  # noqa: ANN001, ANN202
        worker = build(factory)
        if isinstance(worker.poller, SqsPoller):
            worker.poller.cg_concurrency = concurrency_for(factory.esm_config)
            worker.poller.cg_found = threading.Event()
            worker.poller.cg_stopped = worker._shutdown_event  # set by a disable, a delete, an update, shutdown
        return worker

    def poll_events(poller) -> None:  # noqa: ANN001
        slots = getattr(poller, "cg_concurrency", 1)
        if slots <= 1 or poller.is_fifo_queue:
            return one_batch(poller)
        return drain(lambda: one_batch(poller), slots, poller.cg_found, poller.cg_stopped,
                     EmptyPollResultsException)

    def handle_messages_noting(poller, messages):  # noqa: ANN001, ANN202
        found = getattr(poller, "cg_found", None)
        if found is not None:
            found.set()  # the receive brought messages: the other slots may start
        return handle_messages(poller, messages)

    esm_worker_factory.EsmWorkerFactory.get_esm_worker = get_esm_worker
    SqsPoller.poll_events = poll_events
    SqsPoller.handle_messages = handle_messages_noting
    _installed = True
    LOG.info("SQS event source mappings run up to MaximumConcurrency batches at once while messages wait")
