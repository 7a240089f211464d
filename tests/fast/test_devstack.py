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


# --- the local broker's retention (docs/decisions.md, "The local broker's retention") -----------------------

def test_streams_keep_the_configured_minutes_and_dead_letters_a_week(monkeypatch):
    from devstack.services import topic_configs

    monkeypatch.setenv("CG_KAFKA_RETENTION_MINUTES", "20")
    wanted = Kafka(StackConfig.from_env()).wanted_topics()
    assert wanted["cluster-events"] == (3, {"retention.ms": "1200000", "segment.ms": "60000"})
    assert wanted["logs.clustergenie"][1] == wanted["deployments"][1] == wanted["cluster-events"][1]
    assert wanted["cluster-events.dlq"] == (1, {"retention.ms": str(7 * 24 * 3600 * 1000), "segment.ms": "3600000"})
    # A retention shorter than a segment's minute keeps the segment within it.
    assert topic_configs(1, dead_letters=False) == {"retention.ms": "60000", "segment.ms": "60000"}


@pytest.mark.parametrize("value", ["0", "-5", "a day"])
def test_a_retention_that_is_not_a_positive_number_of_minutes_is_refused(monkeypatch, value):
    monkeypatch.setenv("CG_KAFKA_RETENTION_MINUTES", value)
    with pytest.raises(SystemExit, match="CG_KAFKA_RETENTION_MINUTES"):
        StackConfig.from_env()


def _topic_config(admin, topic: str, keys: list[str]) -> dict[str, str]:  # noqa: ANN001
    from kafka.admin import ConfigResource, ConfigResourceType

    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=keys)])
    return {key: entry["value"] for key, entry in described["topic"][topic].items() if key in keys}


def test_the_running_stacks_topics_have_their_retention(kafka_broker):
    """`./dev up` (and `./dev test`, which runs it) set every topic of the stack as `wanted_topics` says."""
    kafka = Kafka(StackConfig.from_env())
    admin = kafka._admin()
    try:
        for topic, (_, configs) in kafka.wanted_topics().items():
            assert _topic_config(admin, topic, list(configs)) == configs, topic
    finally:
        admin.close()


def test_ensure_topics_creates_with_retention_and_sets_it_on_a_topic_made_without(fresh_topic):
    """An upgraded stack's topics were created without retention: `./dev up` sets it, once."""
    import uuid

    from devstack.services import ensure_topics

    kafka = Kafka(StackConfig.from_env())
    old, new = fresh_topic(1, "retention-old"), f"retention-new-{uuid.uuid4().hex[:10]}"
    configs = {"retention.ms": "600000", "segment.ms": "60000"}
    admin = kafka._admin()
    try:
        assert _topic_config(admin, old, list(configs)) != configs
        assert sorted(ensure_topics(admin, {old: (1, configs), new: (2, configs)})) == sorted([old, new])
        assert _topic_config(admin, old, list(configs)) == configs
        assert _topic_config(admin, new, list(configs)) == configs
        assert len(admin.describe_topics([new])[0]["partitions"]) == 2
        assert ensure_topics(admin, {old: (1, configs), new: (2, configs)}) == []  # nothing left to change
    finally:
        admin.delete_topics([new])
        admin.close()


def test_the_local_broker_drops_records_past_their_retention(fresh_topic):
    """The premise of the decision: this broker honours `retention.ms` (by segment, as Kafka does)."""
    import time

    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition

    from devstack.services import ensure_topics

    kafka = Kafka(StackConfig.from_env())
    topic = fresh_topic(1, "retention-drop")
    admin = kafka._admin()
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{kafka.port}")
    consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{kafka.port}")
    partition = TopicPartition(topic, 0)
    try:
        ensure_topics(admin, {topic: (1, {"retention.ms": "2000", "segment.ms": "1000"})})
        for i in range(20):
            producer.send(topic, f"old-{i}".encode())
        producer.flush()
        assert consumer.beginning_offsets([partition])[partition] == 0
        deadline = time.monotonic() + 30
        while consumer.beginning_offsets([partition])[partition] < 20 and time.monotonic() < deadline:
            producer.send(topic, b"newer").get(timeout=10)  # a later segment, so the old one can go
            time.sleep(1)
        assert consumer.beginning_offsets([partition])[partition] >= 20
    finally:
        producer.close()
        consumer.close()
        admin.close()


def test_the_bridge_watcher_is_restarted_when_its_code_changed(monkeypatch, tmp_path):
    """An old watcher would keep judging the bridge by old rules (and restart it over and over): `./dev up`
    restarts a watcher whose code (devstack/services.py) is not the current one, and reuses a current one."""
    import os

    from devstack.services import BridgeWatch

    monkeypatch.setenv("CG_STATE_DIR", str(tmp_path))  # a stack of its own: the watcher finds no stack.json
    watch = BridgeWatch(StackConfig.from_env())
    try:
        first = watch.ensure()
        pid = watch.own_pid()
        assert first == f"started (pid {pid})"
        assert watch.ensure() == f"reused (pid {pid})"
        (tmp_path / "run" / "bridge-watch.code").write_text("the code of an older checkout")
        assert watch.ensure() == f"restarted (pid {pid} ran older code) (pid {watch.own_pid()})"
        assert watch.own_pid() != pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        watch.stop()
