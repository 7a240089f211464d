"""API keys for the operator (issue 13): `./dev apikey create` and the first admin key of a fresh stack.

Keys are created in the stack's database with the app's own code (`chalicelib.auth.keys.ApiKeyService`), so
there is one way to make one. The first admin key is written to `$CG_STATE_DIR/admin.key` (mode 0600) and
only that path is printed; a key is printed only by `./dev apikey create`, on the operator's terminal.
"""
from __future__ import annotations

import os
import urllib.request

from devstack.config import StackConfig


def _service(cfg: StackConfig):
    os.environ.update({k: v for k, v in cfg.app_env().items()})
    os.environ["CG_DB_NAME"] = cfg.db_name
    from chalicelib import db
    from chalicelib.auth.keys import ApiKeyService
    from chalicelib.observability import logger
    from chalicelib.settings import reset_settings

    logger.setLevel("WARNING")  # the operator's terminal gets the path (or the key asked for), not app log lines
    reset_settings()
    db.reset_connection()
    return ApiKeyService()


def create_key(cfg: StackConfig, tenant: str, role: str, name: str) -> str:
    return _service(cfg).create(tenant=tenant, role=role, name=name, created_by="./dev apikey")[1]


def ensure_admin_key(cfg: StackConfig) -> str:
    """The stack's first admin key (platform tenant): kept while it still verifies, else a new one."""
    from chalicelib.errors import AuthenticationError

    service = _service(cfg)
    path = cfg.admin_key_file
    if path.exists():
        try:
            service.verify(path.read_text().strip())
            return "kept"
        except AuthenticationError:
            pass
    _, key = service.create(tenant="default", role="admin", name="first admin (./dev up)", created_by="./dev up")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    path.chmod(0o600)
    return "created"


def read_admin_key(cfg: StackConfig) -> str | None:
    path = cfg.admin_key_file
    return path.read_text().strip() if path.exists() else None


# The console keeps the signed-in key of a tab here (console/src/api.ts); tools that open the console in a
# browser put the key there before the page loads, as after a sign-in.
CONSOLE_KEY_SLOT = "clustergenie.apiKey"


class StackCredentials(urllib.request.BaseHandler):
    """Adds `X-API-Key: <key>` to every urllib request to a stack's API (`/_aws/execute-api/`) that names no
    credential itself: the one way the tests' and benches' urllib calls authenticate (issue 13)."""

    handler_order = 100

    def __init__(self, key: str) -> None:
        self.key = key

    def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
        if "/_aws/execute-api/" in request.full_url and not (
                request.has_header("X-api-key") or request.has_header("Authorization")):
            request.add_unredirected_header("X-api-key", self.key)
        return request

    https_request = http_request


def install_stack_credentials(key: str | None) -> None:
    """Make urllib's default opener send `key` to the stack's API (None: back to the plain opener)."""
    urllib.request.install_opener(urllib.request.build_opener(StackCredentials(key)) if key else None)
