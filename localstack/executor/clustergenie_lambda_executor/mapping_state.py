"""An event source mapping's `State` belongs to its newest worker (issue 17: `State: Disabled` while it delivers).

LocalStack (localstack-core 2026.3, `services/lambda_/provider.py`, `update_event_source_mapping_v2`) replaces
a mapping's worker on every update: it stops the old worker (which writes `Disabling` into the mapping's store
entry) and creates a new one whose poller thread writes `Enabled`. The old worker's poller loop, when its poll in
flight ends, writes `Disabled` into the *same* entry (keyed by the mapping's UUID): whichever thread writes last
wins, so a mapping that polls and delivers can read `Disabled` for good after an update (CloudFormation sends one
when a stack update touches the mapping). On AWS a mapping's state is one thing.

`install()` makes the store entry follow the worker the provider now holds for that UUID: a write from a worker
that another worker of the same mapping has replaced is dropped. Deletion is untouched (the provider drops the
worker from its table before deleting, and no new worker follows).
"""
from __future__ import annotations

import logging
import threading
import weakref

LOG = logging.getLogger(__name__)

_newest: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()
_lock = threading.Lock()
_installed = False


def note_worker(uuid: str, worker: object) -> None:
    """`worker` is now the mapping's worker (the provider creates a new one on every create and update)."""
    with _lock:
        _newest[uuid] = worker


def owns_state(uuid: str, worker: object) -> bool:
    """May `worker` write the mapping's state? Only the newest worker of its mapping may (or any worker of a
    mapping whose newest worker is unknown, e.g. one restored from persisted state)."""
    with _lock:
        newest = _newest.get(uuid)
    return newest is None or newest is worker


def install() -> None:
    global _installed
    if _installed:
        return
    from localstack.services.lambda_.event_source_mapping.esm_worker import EsmWorker

    original_init = EsmWorker.__init__
    original_update = EsmWorker.update_esm_state_in_store

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN202, N807
        original_init(self, *args, **kwargs)
        note_worker(self.uuid, self)

    def update_esm_state_in_store(self, new_state):  # noqa: ANN001, ANN202
        if not owns_state(self.uuid, self):
            LOG.debug("dropped state %s of a replaced worker of mapping %s", new_state, self.uuid)
            return
        original_update(self, new_state)

    EsmWorker.__init__ = __init__
    EsmWorker.update_esm_state_in_store = update_esm_state_in_store
    _installed = True
    LOG.info("an event source mapping's state follows its newest worker")
