"""Where the local stack lives and listens: every port and directory comes from an environment variable.

Defaults bind to 127.0.0.1 on the services' usual ports. State (venvs, data, logs, pid files) lives under
CG_STATE_DIR, by default `.local/` in the checkout, so two checkouts never share a pid file.
"""
from __future__ import annotations

import os
import pathlib
import re
import secrets
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def _int_var(var: str, default: int, what: str, low: int, high: int | None, bound: str) -> int:
    """An integer from the environment within `low`..`high` (None: no upper bound); SystemExit naming `var`,
    saying it is not `what` or, outside the bounds, `bound`."""
    raw = os.environ.get(var, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{var}={raw!r} is not {what}") from None
    if value < low or (high is not None and value > high):
        raise SystemExit(f"{var}={value}{bound}")
    return value


def _port(var: str, default: int) -> int:
    return _int_var(var, default, "a port number", 1, 65535, " is out of range")


def _positive_minutes(var: str, default: int) -> int:
    return _int_var(var, default, "a whole number of minutes", 1, None, ": at least 1 minute")


def _stack_name(name: str) -> str:
    """A CloudFormation stack name that also makes valid bucket and secret names (lower case)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", name):
        raise SystemExit(f"CG_STACK_NAME={name!r}: use lower-case letters, digits and '-', at most 41 characters")
    return name


def _auth_enabled(value: str) -> str:
    """The deployed stack's AuthEnabled parameter: "true" unless CG_AUTH_ENABLED says false (local stage only)."""
    if value.strip().lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
        raise SystemExit(f"CG_AUTH_ENABLED={value!r}: use true or false")
    return "false" if value.strip().lower() in ("false", "0", "off", "no") else "true"


@dataclass(frozen=True)
class StackConfig:
    state_dir: pathlib.Path
    mysql_port: int
    redis_port: int
    kafka_port: int
    pushgateway_port: int
    prometheus_port: int
    localstack_port: int
    mysql_admin_user: str
    mysql_admin_password: str
    db_name: str
    test_db_name: str
    db_user: str
    lambda_executor: str
    stack_name: str
    auth_enabled: str = "true"
    # How long the local broker keeps the records of its event and log streams (docs/decisions.md, "The local
    # broker's retention"): short, because it rewrites its whole store while records are written.
    kafka_retention_minutes: int = 15

    @classmethod
    def from_env(cls) -> "StackConfig":
        return cls(
            state_dir=pathlib.Path(os.environ.get("CG_STATE_DIR", ROOT / ".local")).resolve(),
            # Its own MariaDB and Redis on ports of their own (issue 18): never the machine's 3306 and 6379.
            mysql_port=_port("CG_MYSQL_PORT", 3307),
            redis_port=_port("CG_REDIS_PORT", 6380),
            kafka_port=_port("CG_KAFKA_PORT", 19092),
            pushgateway_port=_port("CG_PUSHGATEWAY_PORT", 9091),
            prometheus_port=_port("CG_PROMETHEUS_PORT", 9090),
            localstack_port=_port("CG_LOCALSTACK_PORT", 4566),
            mysql_admin_user=os.environ.get("CG_MYSQL_ADMIN_USER", "root"),
            mysql_admin_password=os.environ.get("CG_MYSQL_ADMIN_PASSWORD", ""),
            db_name=os.environ.get("CG_DB_NAME", "clustergenie"),
            test_db_name=os.environ.get("CG_TEST_DB_NAME", "clustergenie_test"),
            db_user=os.environ.get("CG_DB_USER", "clustergenie"),
            lambda_executor=os.environ.get("CG_LAMBDA_EXECUTOR", "local-process"),
            stack_name=_stack_name(os.environ.get("CG_STACK_NAME", "clustergenie-local")),
            auth_enabled=_auth_enabled(os.environ.get("CG_AUTH_ENABLED", "true")),
            kafka_retention_minutes=_positive_minutes("CG_KAFKA_RETENTION_MINUTES", 15),
        )

    # --- derived paths ---------------------------------------------------------------------------------
    @property
    def run_dir(self) -> pathlib.Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> pathlib.Path:
        return self.state_dir / "log"

    @property
    def data_dir(self) -> pathlib.Path:
        return self.state_dir / "data"

    @property
    def app_python(self) -> pathlib.Path:
        return ROOT / ".venv" / "bin" / "python"

    @property
    def admin_key_file(self) -> pathlib.Path:
        """The first admin API key of this stack (`./dev up` creates it; owner-only permissions)."""
        return self.state_dir / "admin.key"

    @property
    def localstack_venv(self) -> pathlib.Path:
        return self.state_dir / "localstack-venv"

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.localstack_port}"

    @property
    def event_keys_file(self) -> pathlib.Path:
        return self.state_dir / "event_signing_keys.json"

    def event_signing_keys(self) -> str:
        """The HMAC keys the app signs its events with (issue 18, chalicelib/event_signing.py): generated once
        per checkout into the state dir (mode 0600, never committed), rotated by `./dev rotate-event-key`."""
        from chalicelib.event_signing import new_key_document

        path = self.event_keys_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_key_document())
            path.chmod(0o600)
        return path.read_text().strip()

    def rotate_event_key(self) -> str:
        """A new current key; the old current becomes previous (still accepted), the old previous goes."""
        import json

        from chalicelib.event_signing import new_key_document

        old = json.loads(self.event_signing_keys())
        self.event_keys_file.write_text(new_key_document(previous=old["current"]))
        return self.event_signing_keys()

    def db_password(self) -> str:
        """The app user's password: generated once per machine, never committed or logged.

        It is kept per machine, not per checkout, because the database user lives in a MariaDB that
        several checkouts (a clone under CI, a second worktree) may share: a per-checkout password would
        make each checkout's bootstrap lock the others out.
        """
        path = pathlib.Path(os.environ.get("CG_DB_PASSWORD_FILE", pathlib.Path.home() / ".config" / "clustergenie" / "db_password"))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(18))
            path.chmod(0o600)
        return path.read_text().strip()

    # --- generated service passwords (issue 18: the local services refuse clients without them) ---------
    PUSHGATEWAY_USER = "clustergenie"

    @property
    def pushgateway_password_file(self) -> pathlib.Path:
        return self.state_dir / "pushgateway_password"

    def pushgateway_password(self) -> str:
        """The Pushgateway's basic-auth password (user PUSHGATEWAY_USER): generated once per checkout."""
        return generated_secret(self.pushgateway_password_file)

    @property
    def mysql_root_password_file(self) -> pathlib.Path:
        return self.state_dir / "mysql_root_password"

    def mysql_admin_secret(self) -> str:
        """The admin user's password: CG_MYSQL_ADMIN_PASSWORD when given, else root's generated one (issue 18:
        the MariaDB ./dev starts refuses root over TCP without it)."""
        return self.mysql_admin_password or generated_secret(self.mysql_root_password_file)

    # The user that runs the yoyo migrations (ALL on the app's and the test schema); the app's user only reads
    # and writes rows (devstack/database.py).
    MIGRATION_USER = "clustergenie_migrate"

    def migration_password(self) -> str:
        return generated_secret(self.state_dir / "mysql_migration_password")

    @property
    def redis_password_file(self) -> pathlib.Path:
        return self.state_dir / "redis_password"

    def redis_password(self) -> str:
        """The password the Redis ./dev starts requires (`requirepass`): generated once per checkout."""
        return generated_secret(self.redis_password_file)

    def app_env(self) -> dict[str, str]:
        """The CG_* settings the app, the tests and the deploy script read (written to stack.env)."""
        return {
            "CG_STATE_DIR": str(self.state_dir),
            "CG_DB_HOST": HOST,
            "CG_DB_PORT": str(self.mysql_port),
            "CG_DB_NAME": self.db_name,
            "CG_DB_USER": self.db_user,
            "CG_DB_PASSWORD": self.db_password(),
            "CG_EVENT_SIGNING_KEYS": self.event_signing_keys(),
            "CG_REDIS_URL": f"redis://{HOST}:{self.redis_port}/0",
            "CG_REDIS_PASSWORD": self.redis_password(),
            "CG_KAFKA_BOOTSTRAP": f"{HOST}:{self.kafka_port}",
            "CG_PUSHGATEWAY_URL": f"http://{HOST}:{self.pushgateway_port}",
            "CG_PUSHGATEWAY_USER": self.PUSHGATEWAY_USER,
            "CG_PUSHGATEWAY_PASSWORD": self.pushgateway_password(),
            "CG_PROMETHEUS_URL": f"http://{HOST}:{self.prometheus_port}",
            "CG_LOCALSTACK_PORT": str(self.localstack_port),
            "CG_STACK_NAME": self.stack_name,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            # LocalStack accepts any credentials; these are its documented dummies, not secrets.
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def write_stack_env(self) -> pathlib.Path:
        path = self.state_dir / "stack.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in self.app_env().items()))
        path.chmod(0o600)
        return path


def generated_secret(path: pathlib.Path) -> str:
    """A random password kept in `path` (owner-only, mode 0600): created on first use, then read back.
    Never committed (the state dir is ignored) and never logged."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    path.chmod(0o600)
    return path.read_text().strip()


def load_stack_env(state_dir: pathlib.Path | str | None = None, *, required: bool = True) -> dict[str, str]:
    """Fill os.environ (never overriding what is set) from the `stack.env` that `./dev` writes.

    The one reader of that file, for the tests, the benches and the deploy script. Returns what it read.
    """
    state = pathlib.Path(state_dir or os.environ.get("CG_STATE_DIR") or ROOT / ".local")
    env_file = state / "stack.env"
    if not env_file.exists():
        if required:
            raise RuntimeError(f"{env_file} is missing: run `./dev up` (or `./dev test`) to start the stack first")
        return {}
    values = {}
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value
            os.environ.setdefault(key.strip(), value)
    return values
