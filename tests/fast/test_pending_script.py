"""`PendingScript` (chalicelib/redis_client.py): a script call sent now and answered later, so that its round trip
overlaps other work (issue 16: the event handler's job read models while MariaDB stores the batch's telemetry).
Each test runs against a redis-server of its own (it flushes scripts, kills connections, stops the server)."""
from __future__ import annotations

import time

import pytest
import redis

from private_redis import free_port, private_redis_server

from chalicelib.redis_client import PendingScript

# Idempotent, as PendingScript requires: the same effect run once or twice.
_SET_AND_READ = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1,
                       decode_responses=True)


def test_the_script_is_sent_before_its_answer_is_read():
    with private_redis_server() as (port, _):
        client, other = _client(port), _client(port)
        script = client.register_script(_SET_AND_READ)
        script(keys=["warm"], args=["up"])  # registered once, as the handler's scripts are after their first call
        pending = PendingScript(client, script, ["k"], ["v"])
        deadline = time.monotonic() + 2
        while other.get("k") != "v":  # applied by Redis while nobody waits for the answer
            assert time.monotonic() < deadline, "the script was not sent ahead"
            time.sleep(0.01)
        assert pending.result() == "v"
        assert client.ping()  # the connection went back to the pool in step


def test_a_script_redis_does_not_know_is_run_the_ordinary_way():
    with private_redis_server() as (port, _):
        client = _client(port)
        script = client.register_script(_SET_AND_READ)  # never loaded: NOSCRIPT on the EVALSHA sent ahead
        assert PendingScript(client, script, ["k"], ["v"]).result() == "v"
        client.script_flush()
        assert PendingScript(client, script, ["k"], ["w"]).result() == "w"
        assert client.get("k") == "w"


def test_a_connection_lost_before_the_answer_runs_the_script_again():
    with private_redis_server() as (port, _):
        client, admin = _client(port), _client(port)
        script = client.register_script(_SET_AND_READ)
        script(keys=["warm"], args=["up"])
        pending = PendingScript(client, script, ["k"], ["v"])
        admin.client_kill_filter(skipme=True)  # every other connection, the pending one with them
        assert pending.result() == "v"
        assert client.get("k") == "v"


def test_an_error_of_the_script_itself_is_raised_and_the_connection_stays_usable():
    with private_redis_server() as (port, _):
        client = _client(port)
        script = client.register_script("return redis.error_reply('refused by the script')")
        client.script_load(script.script)
        with pytest.raises(redis.ResponseError, match="refused by the script"):
            PendingScript(client, script, [], []).result()
        assert client.ping()


def test_redis_unreachable_is_raised_by_result_as_the_ordinary_call_raises_it():
    client = _client(free_port())  # nothing listens there
    script = client.register_script(_SET_AND_READ)
    pending = PendingScript(client, script, ["k"], ["v"])  # does not raise: the ordinary call will
    with pytest.raises(redis.ConnectionError):
        pending.result()
