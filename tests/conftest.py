"""Test-wide setup: point the app at the stack that `./dev up`/`./dev test` started.

`.local/stack.env` (written by `./dev`) holds the ports and the generated database password. The tests
use their own database (`clustergenie_test`) and Redis database (15), so they never touch the data of
the stack a developer is running.
"""
from __future__ import annotations

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATE_DIR = pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local"))


def _load_stack_env() -> None:
    env_file = STATE_DIR / "stack.env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: run `./dev test` (or `./dev up`) to start the stack first")
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key, value)


_load_stack_env()
os.environ["CG_DB_NAME"] = os.environ.get("CG_TEST_DB_NAME", "clustergenie_test")
os.environ["CG_REDIS_URL"] = os.environ.get("CG_TEST_REDIS_URL", os.environ["CG_REDIS_URL"].rsplit("/", 1)[0] + "/15")
os.environ.setdefault("CG_ENVIRONMENT", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
