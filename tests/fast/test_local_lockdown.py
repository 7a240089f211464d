"""Issue 18, least privilege locally: the services `./dev` starts refuse a client without credentials, and
their admin endpoints are off. Each probe talks to the real server of this checkout's stack."""
from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request

import pytest

from devstack.config import HOST, StackConfig
from devstack.services import Pushgateway


@pytest.fixture(scope="module")
def cfg(base_stack) -> StackConfig:  # noqa: ANN001
    return StackConfig.from_env()


def status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_pushgateway_refuses_a_push_without_credentials(cfg):
    url = f"http://{HOST}:{cfg.pushgateway_port}/metrics/job/lockdown_probe"
    body = b"# TYPE lockdown_probe gauge\nlockdown_probe 1\n"
    assert status_of(urllib.request.Request(url, data=body, method="PUT")) == 401
    wrong = {"Authorization": "Basic " + "Y2x1c3RlcmdlbmllOndyb25n"}  # clustergenie:wrong
    assert status_of(urllib.request.Request(url, data=body, method="PUT", headers=wrong)) == 401
    assert status_of(urllib.request.Request(f"http://{HOST}:{cfg.pushgateway_port}/metrics")) == 401
    # The stack's own credentials are accepted (so the 401s above are about the credentials, not the push).
    auth = Pushgateway(cfg).auth_header()
    assert status_of(urllib.request.Request(url, data=body, method="PUT", headers=auth)) == 200
    assert status_of(urllib.request.Request(url, method="DELETE", headers=auth)) == 202


def test_the_pushgateway_password_lives_owner_only_in_the_state_dir(cfg):
    assert cfg.pushgateway_password_file.stat().st_mode & 0o777 == 0o600
    assert Pushgateway(cfg).web_config.stat().st_mode & 0o777 == 0o600
    assert cfg.pushgateway_password() not in Pushgateway(cfg).web_config.read_text()  # only its bcrypt hash


@pytest.mark.parametrize("endpoint", ["/-/reload", "/-/quit"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_prometheus_has_no_lifecycle_endpoints(cfg, endpoint, method):
    url = f"http://{HOST}:{cfg.prometheus_port}{endpoint}"
    assert status_of(urllib.request.Request(url, data=b"", method=method)) in (403, 404, 405)
    ready = urllib.request.Request(f"http://{HOST}:{cfg.prometheus_port}/-/ready")
    assert status_of(ready) == 200  # still running: /-/quit did nothing


def test_prometheus_has_no_admin_api(cfg):
    """Prometheus answers its disabled admin API with an error naming it (status 500, errorType unavailable)."""
    url = f"http://{HOST}:{cfg.prometheus_port}/api/v1/admin/tsdb/snapshot"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10)  # noqa: S310
    assert json.loads(refused.value.read()) == {"status": "error", "errorType": "unavailable",
                                                "error": "admin APIs disabled"}


def test_redis_refuses_a_command_without_the_password(cfg):
    import socket

    import redis

    with socket.create_connection((HOST, cfg.redis_port), timeout=2) as sock:  # the bare protocol, no client
        sock.sendall(b"GET anything\r\n")
        assert sock.recv(128).startswith(b"-NOAUTH Authentication required")
    wrong = redis.Redis(host=HOST, port=cfg.redis_port, password="wrong", socket_connect_timeout=2, socket_timeout=2)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    # The app's client (settings from stack.env) is let in.
    from chalicelib.redis_client import get_redis

    assert get_redis().ping() is True


def test_redis_password_is_on_no_command_line(cfg):
    """`requirepass` is in an owner-only config file, not in argv (which every local user can read)."""
    from devstack.services import Redis

    pid = Redis(cfg).own_pid()
    assert pid is not None
    argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert not [arg for arg in argv if cfg.redis_password().encode() in arg]
    assert cfg.redis_password_file.stat().st_mode & 0o777 == 0o600
    assert Redis(cfg).config_file.stat().st_mode & 0o777 == 0o600


def test_mariadb_refuses_root_over_tcp_without_the_password(cfg):
    import pymysql

    for password in ("", "wrong"):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(host=HOST, port=cfg.mysql_port, user="root", password=password, connect_timeout=3)
        assert refused.value.args[0] == 1045  # access denied
    assert cfg.mysql_root_password_file.stat().st_mode & 0o777 == 0o600


def _as_app_user(cfg: StackConfig):  # noqa: ANN202 - a pymysql connection
    import pymysql

    return pymysql.connect(host=HOST, port=cfg.mysql_port, user=cfg.db_user, password=cfg.db_password(),
                           database=cfg.test_db_name, autocommit=True, connect_timeout=3)


@pytest.mark.parametrize("statement", [
    "CREATE TABLE lockdown_probe (id INT PRIMARY KEY)",
    "ALTER TABLE clusters ADD COLUMN lockdown_probe INT",
    "DROP TABLE clusters",
    "TRUNCATE TABLE audit_log",
    "CREATE TRIGGER lockdown_probe BEFORE INSERT ON clusters FOR EACH ROW SET @x = 1",
])
def test_the_app_user_may_not_change_the_schema(cfg, statement):
    import pymysql

    conn = _as_app_user(cfg)
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute(statement)
        assert refused.value.args[0] in (1142, 1044), refused.value  # command denied to user
    finally:
        conn.close()


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET outcome = outcome", "DELETE FROM audit_log"])
def test_the_app_user_may_only_append_to_the_audit_log(cfg, statement):
    """Refused by the privileges themselves (1142), before the table's append-only triggers would be."""
    import pymysql

    conn = _as_app_user(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_log")  # it may read
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute(statement)
        assert refused.value.args[0] == 1142, refused.value
        assert "command denied" in str(refused.value)
    finally:
        conn.close()
