"""Test-wide setup: point the app at the stack that `./dev up`/`./dev test` started.

`.local/stack.env` (written by `./dev`) holds the ports and the generated database password. The tests
use their own database (`clustergenie_test`) and Redis database (15), so they never touch the data of
the stack a developer is running.

Three tiers. A test that needs a service says so by its fixture (`mariadb`, `redis_server`,
`kafka_broker`, `base_stack`, or one built on them; the LocalStack tier's `stack`); every other test is marked `pure`
here and runs under plain `pytest -m pure` with nothing started (no `./dev up`, no stack.env needed).
`./dev test fast` runs the pure tests along with the in-process ones.
"""
from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `.venv/bin/pytest`, unlike `python -m pytest`, does not add it
    sys.path.insert(0, str(ROOT))

from devstack.config import load_stack_env  # noqa: E402
STATE_DIR = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))


import pytest  # noqa: E402

# Absent before the first `./dev up`: then only the pure tests can run, and the service fixtures say why.
load_stack_env(STATE_DIR, required=False)
os.environ["CG_DB_NAME"] = os.environ.get("CG_TEST_DB_NAME", "clustergenie_test")
os.environ["CG_REDIS_URL"] = os.environ.get(
    "CG_TEST_REDIS_URL", os.environ.get("CG_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/15")

SERVICE_FIXTURES = frozenset({"mariadb", "redis_server", "kafka_broker", "base_stack", "stack"})


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest's hook signature
    for item in items:
        if "localstack" not in item.keywords and not SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pure)
os.environ.setdefault("CG_ENVIRONMENT", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


# --- credentials for the deployed stack (issue 13) ------------------------------------------------------
# The LocalStack and browser tiers call the API with urllib. Authentication is on there as everywhere, so
# every urllib request to the stack's API carries the stack's first admin key (`./dev up` writes it to
# $CG_STATE_DIR/admin.key) unless the request names a credential itself (devstack.apikeys.StackCredentials).
# A test that must send none opens its request with `urllib.request.build_opener()` (a plain opener).
def stack_admin_key() -> str | None:
    path = STATE_DIR / "admin.key"
    return path.read_text().strip() if path.exists() else None


@pytest.fixture(scope="session", autouse=True)
def _stack_credentials():
    from devstack.apikeys import install_stack_credentials

    key = stack_admin_key()
    install_stack_credentials(key)
    yield
    install_stack_credentials(None)
