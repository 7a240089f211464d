"""Test-wide setup: point the app at the stack that `./dev up`/`./dev test` started.

`.local/stack.env` (written by `./dev`) holds the ports and the generated database password. The tests
use their own database (`clustergenie_test`) and Redis database (15), so they never touch the data of
the stack a developer is running.
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


load_stack_env(STATE_DIR)
os.environ["CG_DB_NAME"] = os.environ.get("CG_TEST_DB_NAME", "clustergenie_test")
os.environ["CG_REDIS_URL"] = os.environ.get("CG_TEST_REDIS_URL", os.environ["CG_REDIS_URL"].rsplit("/", 1)[0] + "/15")
os.environ.setdefault("CG_ENVIRONMENT", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
