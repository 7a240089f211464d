"""Issue 17: the job worker's SQS mapping read `State: Disabled` while it delivered.

LocalStack replaces a mapping's worker on every update, and the replaced worker's poller loop writes
`Disabled` into the mapping's shared store entry when its poll in flight ends: if that happens after the new
worker wrote `Enabled`, the mapping reads `Disabled` for good (localstack/executor/.../mapping_state.py).
The race depends on thread timing, so it is driven here step by step, with LocalStack's own `EsmWorker` in
LocalStack's own venv (the one `./dev up` installs): the provider's update sequence, then the old worker's late
write. Without the executor's fix the late write wins (this is the defect, shown); with it the newest worker's
state stands. No LocalStack server is needed, only its code."""
from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from devstack.config import StackConfig

pytestmark = pytest.mark.localstack

EXECUTOR = pathlib.Path(__file__).resolve().parents[2] / "localstack" / "executor"

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])  # this checkout's executor package, not only the installed copy
from types import SimpleNamespace
from localstack.services.lambda_.event_source_mapping import esm_worker
from localstack.services.lambda_.event_source_mapping.esm_worker import EsmState, EsmWorker
from clustergenie_lambda_executor import mapping_state

# No function is deployed in this process: the worker only needs its account and region to find the store.
esm_worker.get_function_version_from_arn = lambda arn: SimpleNamespace(
    id=SimpleNamespace(account="000000000000", region="us-east-1"))

if sys.argv[2] == "fixed":
    mapping_state.install()
arn = "arn:aws:lambda:us-east-1:000000000000:function:cg-race-worker"
config = {"UUID": "race-uuid", "FunctionArn": arn, "BatchSize": 10, "State": EsmState.ENABLED}
old = EsmWorker(config, poller=None, enabled=True)
store = old._state.event_source_mappings
store["race-uuid"] = dict(config)
# update_event_source_mapping_v2: a new worker from the factory, the old one stopped, the new one created.
new = EsmWorker({**config, "BatchSize": 9}, poller=None, enabled=True)
old.stop()                                      # Disabling
new.update_esm_state_in_store(EsmState.ENABLED)  # the new poller thread starts
seen = [store["race-uuid"]["State"]]
old.update_esm_state_in_store(EsmState.DISABLED)  # the old poller loop ends after its poll in flight
seen.append(store["race-uuid"]["State"])
print(json.dumps(seen))
"""


def _states(mode: str) -> list[str]:
    python = StackConfig.from_env().localstack_venv / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: `./dev up` installs LocalStack's venv")
    out = subprocess.run([str(python), "-c", SCRIPT, str(EXECUTOR), mode], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_without_the_fix_a_replaced_workers_late_write_leaves_the_mapping_disabled():
    assert _states("unpatched") == ["Enabled", "Disabled"]


def test_with_the_fix_the_newest_worker_owns_the_mapping_state():
    assert _states("fixed") == ["Enabled", "Enabled"]
