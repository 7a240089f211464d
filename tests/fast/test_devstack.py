"""The `./dev` tooling: a port held by something else is a clear error naming the port and its variable."""
from __future__ import annotations

import socket

import pytest

from devstack.config import StackConfig
from devstack.process import StackError
from devstack.services import Kafka, MariaDB, Pushgateway, Redis


@pytest.fixture
def squatter():
    """A plain TCP listener that speaks no protocol, standing in for an unrelated program."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize(
    ("service_cls", "var"),
    [(Pushgateway, "CG_PUSHGATEWAY_PORT"), (Redis, "CG_REDIS_PORT"), (MariaDB, "CG_MYSQL_PORT"), (Kafka, "CG_KAFKA_PORT")],
)
def test_port_taken_by_something_else_names_port_and_variable(service_cls, var, squatter, monkeypatch, tmp_path):
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    monkeypatch.setenv(var, str(squatter))
    service = service_cls(StackConfig.from_env())
    with pytest.raises(StackError) as err:
        service.ensure()
    assert str(squatter) in str(err.value)
    assert var in str(err.value)
    assert not service.pidfile.exists()  # nothing was started


@pytest.mark.parametrize("service_cls", [Redis, MariaDB])
def test_a_server_dev_did_not_start_is_never_reused_for_mariadb_or_redis(base_stack, service_cls, monkeypatch, tmp_path):
    """Issue 18: ./dev owns its MariaDB and Redis. This checkout's running server, seen from another state dir
    (so not started by "this" ./dev), is refused with the port and the variable, and left running."""
    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))
    service = service_cls(StackConfig.from_env())
    with pytest.raises(StackError, match="did not start") as err:
        service.ensure()
    assert str(service.port) in str(err.value) and service.port_var in str(err.value)
    assert service.state() == "PORT TAKEN by a server ./dev did not start"
    assert service.probe() is True  # untouched


def test_dev_defaults_to_its_own_ports_not_the_machines(monkeypatch):
    for var in ("CG_MYSQL_PORT", "CG_REDIS_PORT"):
        monkeypatch.delenv(var, raising=False)
    cfg = StackConfig.from_env()
    assert (cfg.mysql_port, cfg.redis_port) == (3307, 6380)


@pytest.mark.parametrize("service_cls", [Pushgateway, Redis, MariaDB, Kafka])
def test_probe_recognises_the_running_service(base_stack, service_cls):  # noqa: ANN001
    """The other half of the clash check: the real server on its port is recognised (and so reused)."""
    assert service_cls(StackConfig.from_env()).probe() is True


def test_bad_port_value_is_refused(monkeypatch):
    monkeypatch.setenv("CG_REDIS_PORT", "sixty")
    with pytest.raises(SystemExit, match="CG_REDIS_PORT"):
        StackConfig.from_env()


def test_a_stack_name_that_cannot_name_its_bucket_is_refused(monkeypatch):
    monkeypatch.setenv("CG_STACK_NAME", "ClusterGenie_Local")  # upper case and '_' make no bucket name
    with pytest.raises(SystemExit, match="CG_STACK_NAME"):
        StackConfig.from_env()


def test_the_deploy_fingerprint_follows_the_parameters(monkeypatch):
    """A warm `./dev up` skips the deploy only when nothing it deploys changed, parameters included."""
    import dataclasses

    from devstack.__main__ import _deploy_fingerprint

    cfg = StackConfig.from_env()
    assert _deploy_fingerprint(cfg) == _deploy_fingerprint(cfg)
    assert _deploy_fingerprint(dataclasses.replace(cfg, redis_port=cfg.redis_port + 1)) != _deploy_fingerprint(cfg)


def test_the_redis_dev_starts_keeps_its_keys_across_a_crash(tmp_path):
    """Issue 17: the dev Redis runs with AOF on, so a killed and restarted Redis still has its counters,
    dedup records and idempotency keys (a private server from the same command line, in tmp_path)."""
    import dataclasses
    import subprocess
    import time

    import redis as redis_lib

    from private_redis import free_port

    cfg = dataclasses.replace(StackConfig.from_env(), state_dir=tmp_path, redis_port=free_port())
    argv, _ = Redis(cfg).command()
    assert argv[argv.index("--appendonly") + 1] == "yes"

    def start() -> tuple[subprocess.Popen, redis_lib.Redis]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=cfg.redis_port, password=cfg.redis_password(), socket_connect_timeout=0.5,
                                 socket_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return proc, client
            except redis_lib.ConnectionError:  # still loading or starting
                time.sleep(0.05)
        proc.kill()
        pytest.fail("redis-server did not start")

    proc, client = start()
    try:
        client.set("events:seen:id:e1", "d")
        client.hincrby("metrics:counts", "x", 3)
        time.sleep(1.5)  # appendfsync everysec
        proc.kill()  # SIGKILL: no shutdown save
        proc.wait(timeout=5)
        proc, client = start()
        assert client.get("events:seen:id:e1") == b"d" and client.hget("metrics:counts", "x") == b"3"
    finally:
        proc.kill()
        proc.wait(timeout=5)
