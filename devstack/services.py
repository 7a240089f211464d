"""The services of the local stack, each started for real, bound to 127.0.0.1, on a configurable port.

`ensure()` is idempotent: a service this checkout started and that still runs is reused; a compatible
server already listening on the port is reused and never stopped by `down`, except MariaDB and Redis, which
`./dev` always runs itself (issue 18: `owned_only`); anything else on the port is an error naming the port
and its variable.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

from devstack import process
from devstack.config import HOST, ROOT, StackConfig
from devstack.process import StackError


def http_get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:  # noqa: S310
        return resp.status, resp.read().decode("utf-8", "replace")


class Service:
    name: str
    port_var: str
    start_timeout = 60.0

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg

    # --- what each service defines ----------------------------------------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    def probe(self) -> bool:
        """True when this kind of server answers on the port."""
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Create data directories, configs or venvs before the first start."""

    def after_ready(self) -> None:
        """Idempotent set-up once the server answers (topics, databases...)."""

    # --- shared lifecycle -------------------------------------------------------------------------
    @property
    def pidfile(self) -> pathlib.Path:
        return self.cfg.run_dir / f"{self.name}.pid"

    @property
    def portfile(self) -> pathlib.Path:
        return self.cfg.run_dir / f"{self.name}.port"

    @property
    def logfile(self) -> pathlib.Path:
        return self.cfg.log_dir / f"{self.name}.log"

    @property
    def data(self) -> pathlib.Path:
        return self.cfg.data_dir / self.name

    def own_pid(self) -> int | None:
        return process.read_pid(self.pidfile)

    # A service whose server ./dev must own (issue 18: it locks it down): a server it did not start on the
    # port is refused, never reused.
    owned_only = False

    def state(self) -> str:
        pid = self.own_pid()
        if pid is not None:
            return f"running (pid {pid}, started by ./dev)"
        if process.port_in_use(self.port) and self.owned_only:
            return "PORT TAKEN by a server ./dev did not start"
        if process.port_in_use(self.port):
            return "running (external, reused)" if self._safe_probe() else "PORT TAKEN by something else"
        return "stopped"

    def _safe_probe(self) -> bool:
        try:
            return self.probe()
        except Exception:
            return False

    def ensure(self) -> str:
        pid = self.own_pid()
        if pid is not None:
            running_port = self.portfile.read_text().strip() if self.portfile.exists() else str(self.port)
            if running_port != str(self.port):
                raise StackError(
                    f"{self.name} started by ./dev (pid {pid}) listens on port {running_port}, but "
                    f"{self.port_var}={self.port}; run ./dev down first to move it"
                )
            process.wait_until(self._safe_probe, timeout=self.start_timeout, what=self.name, pid=pid,
                               logfile=self.logfile)
            self.after_ready()
            return f"reused (pid {pid})"
        if process.port_in_use(self.port) and self.owned_only:
            raise StackError(
                f"port {self.port} is already in use by a server ./dev did not start; ./dev runs and owns its own "
                f"{self.name} (never the machine's): set {self.port_var} to a free port"
            )
        if process.port_in_use(self.port):
            if not self._safe_probe():
                raise StackError(
                    f"port {self.port} is already in use by something that is not {self.name}; "
                    f"free it or set {self.port_var} to another port"
                )
            self.after_ready()
            return "reused an external server"
        self.prepare()
        argv, env = self.command()
        pid = process.spawn(argv, pidfile=self.pidfile, logfile=self.logfile, env=env, cwd=self.cfg.state_dir)
        self.portfile.write_text(str(self.port))
        process.wait_until(self._safe_probe, timeout=self.start_timeout, what=self.name, pid=pid,
                           logfile=self.logfile)
        self.after_ready()
        return f"started (pid {pid})"

    def stop(self) -> bool:
        return process.stop(self.pidfile)


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        raise StackError(f"{name} is not installed (Debian package {package}); run ./dev up to install it")
    return path


class MariaDB(Service):
    name = "mariadb"
    port_var = "CG_MYSQL_PORT"
    owned_only = True

    @property
    def port(self) -> int:
        return self.cfg.mysql_port

    def _connect(self, password: str):  # noqa: ANN202 - a pymysql connection
        import pymysql

        return pymysql.connect(host=HOST, port=self.port, user=self.cfg.mysql_admin_user, password=password,
                               connect_timeout=2, read_timeout=5, write_timeout=5, autocommit=True)

    def admin_connect(self):  # noqa: ANN201 - a pymysql connection
        """The admin connection. A server this checkout started whose root still has no password (fresh from
        mariadb-install-db, or started before issue 18) gets the generated one on every root account now."""
        import pymysql

        try:
            return self._connect(self.cfg.mysql_admin_secret())
        except pymysql.err.OperationalError as exc:
            refused = exc.args and exc.args[0] in (1045, 1698)
            if not (refused and self.own_pid() is not None and not self.cfg.mysql_admin_password):
                if refused:
                    raise StackError(
                        f"the MySQL server on port {self.port} refuses user {self.cfg.mysql_admin_user!r}; set "
                        f"CG_MYSQL_ADMIN_USER/CG_MYSQL_ADMIN_PASSWORD, or {self.port_var} to a free port"
                    ) from None
                raise
        conn = self._connect("")
        self._lock_root(conn)
        return conn

    def _lock_root(self, conn) -> None:  # noqa: ANN001 - a pymysql connection
        """Every root account this server can match (host names never match: --skip-name-resolve) gets the
        generated password; run at each start, so none is left without one."""
        if self.cfg.mysql_admin_password or self.cfg.mysql_admin_user != "root":
            return  # an admin of the caller's choosing: its password is the caller's business
        with conn.cursor() as cur:
            cur.execute("SELECT host FROM mysql.user WHERE user = 'root' AND host IN ('localhost', %s, '::1', '%%')",
                        (HOST,))
            for (host,) in cur.fetchall():
                cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, self.cfg.mysql_admin_secret()))

    def probe(self) -> bool:
        """A MariaDB answers on the port (one refusing our credentials too: admin_connect says so clearly)."""
        import pymysql

        try:
            self._connect(self.cfg.mysql_admin_secret()).close()
            return True
        except pymysql.err.OperationalError as exc:
            return bool(exc.args and exc.args[0] in (1045, 1698))

    def _safe_probe(self) -> bool:
        try:
            return self.probe()
        except StackError:
            raise
        except Exception:
            return False

    def prepare(self) -> None:
        if (self.data / "mysql").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        install_db = require_binary("mariadb-install-db", "mariadb-server")
        subprocess.run(
            [install_db, "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--user=root" if os.geteuid() == 0 else f"--user={os.getlogin()}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [
            require_binary("mariadbd", "mariadb-server"), "--no-defaults", f"--datadir={self.data}",
            f"--port={self.port}", f"--bind-address={HOST}", f"--socket={self.cfg.run_dir / 'mariadb.sock'}",
            f"--pid-file={self.cfg.run_dir / 'mariadbd.internal.pid'}", "--skip-name-resolve",
            "--innodb-buffer-pool-size=256M", "--max-connections=300",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        return argv, {}

    def after_ready(self) -> None:
        from devstack.database import bootstrap

        conn = self.admin_connect()
        try:
            self._lock_root(conn)
        finally:
            conn.close()
        bootstrap(self.cfg, self.admin_connect)


class Redis(Service):
    name = "redis"
    port_var = "CG_REDIS_PORT"
    owned_only = True

    @property
    def port(self) -> int:
        return self.cfg.redis_port

    def probe(self) -> bool:
        """A Redis answers (ours refuses an unauthenticated PING with NOAUTH: that is a Redis too)."""
        import socket

        with socket.create_connection((HOST, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))

    @property
    def config_file(self) -> pathlib.Path:
        """Holds `requirepass` (issue 18), so the password is on no command line; owner-only."""
        return self.data / "redis.conf"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(f"requirepass {self.cfg.redis_password()}\n")
        self.config_file.chmod(0o600)
        return [require_binary("redis-server", "redis-server"), str(self.config_file),
                "--port", str(self.port), "--bind", HOST,
                "--save", "", "--dir", str(self.data), "--daemonize", "no",
                # Persistence (issue 17): a restart keeps counters, dedup records and idempotency keys.
                "--appendonly", "yes", "--appendfsync", "everysec"], {}


# What the local broker keeps (docs/decisions.md, "The local broker's retention"). The streams (events, logs,
# deployments) keep CG_KAFKA_RETENTION_MINUTES and roll a segment every minute, so a record leaves within a
# minute of its retention; the dead-letter topic is what an operator reads after a failure, rare and small,
# and keeps a week.
DEAD_LETTER_RETENTION_MINUTES = 7 * 24 * 60
STREAM_SEGMENT_MINUTES = 1


def topic_configs(stream_retention_minutes: int, dead_letters: bool) -> dict[str, str]:
    """The retention settings one topic is created with and kept at (plain Kafka topic configs)."""
    if dead_letters:
        return {"retention.ms": str(DEAD_LETTER_RETENTION_MINUTES * 60_000), "segment.ms": str(3_600_000)}
    return {"retention.ms": str(stream_retention_minutes * 60_000),
            "segment.ms": str(min(STREAM_SEGMENT_MINUTES, stream_retention_minutes) * 60_000)}


def ensure_topics(admin: Any, wanted: dict[str, tuple[int, dict[str, str]]]) -> list[str]:
    """Create the missing topics of `wanted` (name -> partitions, configs) with their configs, and set the configs
    of existing ones that differ (an upgraded stack's topics were created without retention). Idempotent; the
    names of the topics created or changed."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    touched = []
    existing = set(admin.list_topics())
    for name, (partitions, configs) in wanted.items():
        if name in existing:
            continue
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=configs)])
            touched.append(name)
        except TopicAlreadyExistsError:
            existing.add(name)
    for name in sorted(existing & set(wanted)):
        configs = wanted[name][1]
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=list(configs))])
        current = {key: entry.get("value") for key, entry in described.get("topic", {}).get(name, {}).items()}
        if any(current.get(key) != value for key, value in configs.items()):
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=configs)])
            touched.append(name)
    return touched


class Kafka(Service):
    """A Kafka-wire-compatible broker (noida-db; Apache Kafka cannot be installed here)."""

    name = "kafka"
    port_var = "CG_KAFKA_PORT"
    topics = {"cluster-events": 3, "cluster-events.dlq": 1, "logs.clustergenie": 3, "deployments": 1}
    dead_letter_topics = ("cluster-events.dlq",)

    @property
    def port(self) -> int:
        return self.cfg.kafka_port

    def _admin(self):
        from kafka import KafkaAdminClient

        # Short timeouts: a port that does not speak Kafka must fail the probe in seconds, not minutes.
        return KafkaAdminClient(bootstrap_servers=f"{HOST}:{self.port}", request_timeout_ms=5000,
                                bootstrap_timeout_ms=3000, client_id="clustergenie-dev")

    def probe(self) -> bool:
        admin = self._admin()
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data.mkdir(parents=True, exist_ok=True)
        broker = ROOT / ".venv" / "bin" / "noida-db"
        return [str(broker), "start", "--data-dir", str(self.data), "--host", HOST, "--only", "kafka",
                "--kafka-port", str(self.port)], {}

    def wanted_topics(self) -> dict[str, tuple[int, dict[str, str]]]:
        return {name: (partitions, topic_configs(self.cfg.kafka_retention_minutes, name in self.dead_letter_topics))
                for name, partitions in self.topics.items()}

    def after_ready(self) -> None:
        admin = self._admin()
        try:
            ensure_topics(admin, self.wanted_topics())
        finally:
            admin.close()


def basic_auth_header(user: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Pushgateway(Service):
    """Requires HTTP basic auth (issue 18): its `--web.config.file` holds the bcrypt hash of the password
    ./dev generated into the state dir; the exporter, Prometheus's scrape and the tests send it."""

    name = "pushgateway"
    port_var = "CG_PUSHGATEWAY_PORT"

    @property
    def port(self) -> int:
        return self.cfg.pushgateway_port

    @property
    def web_config(self) -> pathlib.Path:
        return self.data / "web.yml"

    def auth_header(self) -> dict[str, str]:
        return basic_auth_header(self.cfg.PUSHGATEWAY_USER, self.cfg.pushgateway_password())

    def probe(self) -> bool:
        status, body = http_get(f"http://{HOST}:{self.port}/metrics", headers=self.auth_header())
        return status == 200 and "pushgateway_build_info" in body

    def prepare(self) -> None:
        import bcrypt

        self.data.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(self.cfg.pushgateway_password().encode(), bcrypt.gensalt(rounds=10)).decode()
        self.web_config.write_text(f"basic_auth_users:\n  {self.cfg.PUSHGATEWAY_USER}: '{hashed}'\n")
        self.web_config.chmod(0o600)

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [require_binary("prometheus-pushgateway", "prometheus-pushgateway"),
                f"--web.listen-address={HOST}:{self.port}", f"--web.config.file={self.web_config}",
                f"--persistence.file={self.data / 'metrics.db'}", "--persistence.interval=30s"], {}


class Prometheus(Service):
    """No lifecycle or admin API (issue 18): /-/reload and /-/quit are off, so a new config means a restart."""

    name = "prometheus"
    port_var = "CG_PROMETHEUS_PORT"

    @property
    def port(self) -> int:
        return self.cfg.prometheus_port

    @property
    def config_file(self) -> pathlib.Path:
        return self.cfg.state_dir / "prometheus" / "prometheus.yml"

    @property
    def started_with(self) -> pathlib.Path:
        """The config the running Prometheus was started with (a restart is needed when it differs)."""
        return self.cfg.run_dir / "prometheus.config"

    def probe(self) -> bool:
        status, body = http_get(f"http://{HOST}:{self.port}/api/v1/status/buildinfo")
        return status == 200 and '"success"' in body

    def prepare(self) -> None:
        if not self.config_file.exists():
            self.write_config()

    def write_config(self, api_metrics_url: str | None = None) -> None:
        """Render monitoring/prometheus/prometheus.yml with this stack's ports and the API's /metrics
        (given, else the one of the deployment recorded in stack.json; the API job is left out without one)."""
        template = (ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text()
        rendered = template.replace("${PUSHGATEWAY}", f"{HOST}:{self.cfg.pushgateway_port}")
        rendered = rendered.replace("${PUSHGATEWAY_USER}", self.cfg.PUSHGATEWAY_USER)
        self.cfg.pushgateway_password()  # the file exists before Prometheus reads it
        rendered = rendered.replace("${PUSHGATEWAY_PASSWORD_FILE}", str(self.cfg.pushgateway_password_file))
        rendered = rendered.replace("${RULES_DIR}", str(ROOT / "monitoring" / "prometheus" / "rules"))
        api_metrics_url = api_metrics_url or self._deployed_api_metrics_url()
        if api_metrics_url:
            parsed = urllib.parse.urlsplit(api_metrics_url)
            rendered = rendered.replace("${API_HOST}", parsed.netloc).replace("${API_METRICS_PATH}", parsed.path)
        else:
            head, _, rest = rendered.partition("  # BEGIN api")
            rendered = head + rest.partition("  # END api\n")[2]
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(rendered)

    def _deployed_api_metrics_url(self) -> str | None:
        try:
            api_url = json.loads((self.cfg.state_dir / "stack.json").read_text())["api_url"]
        except (OSError, ValueError, KeyError):
            return None
        return api_url.rstrip("/") + "/metrics"

    def reload(self) -> str:
        """Make Prometheus use its rendered config: a restart when the running one started with another
        (there is no lifecycle API to reload through); says what it did."""
        if self.own_pid() is None:
            return "not started by ./dev: its config is its own"
        if self.started_with.exists() and self.started_with.read_text() == self.config_file.read_text():
            return "config unchanged"
        self.stop()
        return f"restarted with the new config: {self.ensure()}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data.mkdir(parents=True, exist_ok=True)
        self.started_with.write_text(self.config_file.read_text())
        return [require_binary("prometheus", "prometheus"), f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.data}", f"--web.listen-address={HOST}:{self.port}",
                "--storage.tsdb.retention.time=2d"], {}


# The AWS services the stack and its tests call on LocalStack (LocalStack's SERVICES; a call to any other is
# refused). The template: CloudFormation (with S3 and STS), IAM, Lambda, API Gateway, SQS, EventBridge
# (schedules), Secrets Manager (with KMS); the `aws` droplet provider's tests: EC2.
LOCALSTACK_SERVICES = ("cloudformation", "s3", "sts", "iam", "lambda", "apigateway", "sqs", "events",
                       "secretsmanager", "kms", "ec2")


class LocalStack(Service):
    """LocalStack in host mode (no Docker), with our Lambda runtime executor plugin."""

    name = "localstack"
    port_var = "CG_LOCALSTACK_PORT"
    start_timeout = 90.0

    @property
    def port(self) -> int:
        return self.cfg.localstack_port

    def probe(self) -> bool:
        status, body = http_get(f"http://{HOST}:{self.port}/_localstack/health")
        return status == 200 and '"services"' in body

    def prepare(self) -> None:
        from devstack.install import ensure_localstack_venv

        ensure_localstack_venv(self.cfg)
        self.data.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            "GATEWAY_LISTEN": f"{HOST}:{self.port}",
            # the default server binds 0.0.0.0 whatever GATEWAY_LISTEN says
            "GATEWAY_SERVER": "hypercorn",
            "DNS_ADDRESS": "0",
            # queue URLs as http://127.0.0.1:<port>/queue/... (no public DNS name to resolve)
            "SQS_ENDPOINT_STRATEGY": "path",
            "LOCALSTACK_HOST": f"{HOST}:{self.port}",
            "LOCALSTACK_VOLUME_DIR": str(self.data),
            "LAMBDA_RUNTIME_EXECUTOR": self.cfg.lambda_executor,
            "CG_LAMBDA_PYTHON": str(self.cfg.app_python),
            "CG_STATE_DIR": str(self.cfg.state_dir),
            # no traffic off this machine: no analytics, no certificate download
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "SKIP_INFRA_DOWNLOADS": "1",
            "PERSISTENCE": "0",
            # No AWS/SQS CloudWatch metrics: LocalStack publishes two PutMetricData calls through its own gateway
            # for every SendMessage (one per receive and delete), which cost it more CPU than the send itself
            # (issue 16, docs/decisions.md "The front, third round"); nothing in the stack reads them (queue depth
            # comes from GetQueueAttributes, alerts from Prometheus), and on AWS SQS emits them outside the call.
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            # Only the services the stack uses (LOCALSTACK_SERVICES): no CloudWatch and no CloudWatch Logs.
            # With them on, every Lambda invoke made LocalStack call itself twice through its own gateway
            # (PutMetricData for AWS/Lambda Invocations, PutLogEvents for the function's output): 13-31 ms of its
            # CPU per invoke, 3.6 ms without (issue 16, sixth round). Nothing here reads either: the
            # functions' output is in $CG_STATE_DIR/log/lambda/ (the executor), alerts come from Prometheus.
            "SERVICES": ",".join(LOCALSTACK_SERVICES),
            "IN_MEMORY_CLIENT": "1",
            # Event source mappings as on AWS (issue 16, docs/decisions.md): the next batch is polled as soon
            # as one is done while a backlog exists (LocalStack's default waits 1 s after every batch), and an
            # idle queue is polled at least every second (default: backing off to 10 s, where AWS long-polls).
            # Concurrent batches: clustergenie_lambda_executor/sqs_concurrency.py.
            "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0",
            "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "1",
        }
        python = self.cfg.localstack_venv / "bin" / "python"
        return [str(python), "-m", "localstack.runtime.main"], env


BRIDGE_CODE = ROOT / "localstack" / "msk_bridge" / "bridge.py"
REQUIREMENTS = ROOT / "requirements.txt"
_BRIDGE_MODULE = "clustergenie_msk_bridge"


def load_bridge_module():  # noqa: ANN201 - the bridge module
    """The MSK bridge's code as a module, loaded once (tests and benches build `aws:kafka` events with its
    own builder). `localstack/` is not a package, so that it cannot shadow LocalStack itself: the file is
    loaded by path."""
    import importlib.util
    import sys

    if _BRIDGE_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(_BRIDGE_MODULE, BRIDGE_CODE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_BRIDGE_MODULE] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[_BRIDGE_MODULE]


class Bridge(Service):
    """The MSK event-source stand-in: Kafka topics -> Lambda Invoke, in the aws:kafka event shape."""

    name = "msk-bridge"
    port_var = ""

    @property
    def port(self) -> int:
        return 0

    # A bridge whose status file is older than this has a hung main loop; one with lag that has not
    # delivered for STALLED_SECONDS is not progressing (a hung invoke, a consumer that lost its partitions).
    STATUS_STALE_SECONDS = 30
    STALLED_SECONDS = 300

    def state(self) -> str:
        pid = self.own_pid()
        if not pid:
            return "stopped"
        status = self.status()
        parts = [f"running (pid {pid}, started by ./dev)"]
        for function, item in sorted(status.get("mappings", {}).items()):
            last = item.get("last_delivery_at")
            ago = f"{time.time() - last:.0f}s ago" if last else "none yet"
            parts.append(f"{item['topic']}: lag {item['total_lag']}, last delivery {ago}")
        problem = self.not_progressing(status)
        if problem:
            parts.append(f"NOT PROGRESSING: {problem}")
        return "; ".join(parts)

    @property
    def status_file(self) -> pathlib.Path:
        """Written by the bridge every few seconds: last delivery time and lag per partition per mapping."""
        return self.cfg.state_dir / "msk-bridge" / "status.json"

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def not_progressing(self, status: dict, now: float | None = None) -> str | None:
        """Why a running bridge is not doing its job (None: it is): judged by progress, not by its pid."""
        now = now or time.time()
        updated = status.get("updated_at")
        if updated is None or now - updated > self.STATUS_STALE_SECONDS:
            return "its status file is stale" if updated else "no status file"
        for function, item in status.get("mappings", {}).items():
            if not item.get("alive", True):
                return f"the mapping for {function} has stopped"
            last = item.get("last_delivery_at") or status.get("started_at") or updated
            if item.get("total_lag", 0) > 0 and now - last > self.STALLED_SECONDS:
                return f"{function} has lag {item['total_lag']} and delivered nothing for {now - last:.0f}s"
        return None

    @property
    def mappings(self) -> pathlib.Path:
        """Generated at deploy from the template's Kafka event source mappings (see devstack/deploy.py)."""
        return self.cfg.state_dir / "msk-bridge" / "mappings.json"

    @property
    def code(self) -> pathlib.Path:
        return BRIDGE_CODE

    def ensure(self) -> str:
        """Start the bridge, or restart it when it is stale (other mappings or code) or not progressing.
        Serialised by a lock file: `./dev up` and bridge-watch may both call it."""
        import fcntl

        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.run_dir / f"{self.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._ensure_locked()

    def _ensure_locked(self) -> str:
        mappings = stack_json(self.cfg).get("kafka_mappings")
        if not mappings:
            raise StackError("stack.json has no kafka_mappings: deploy the stack first (./dev up)")
        self.mappings.parent.mkdir(parents=True, exist_ok=True)
        self.mappings.write_text(json.dumps({"mappings": mappings}, indent=2) + "\n")
        pid = self.own_pid()
        stamp = self.cfg.run_dir / f"{self.name}.mappings"
        # What it was started with: its mappings, its own code and the app venv's requirements (it runs on that
        # venv: a package added there, such as a compression codec, is importable only after a restart).
        started_with = "\n".join([self.mappings.read_text(), hashlib.sha256(self.code.read_bytes()).hexdigest(),
                                   hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()])
        if pid is not None:
            problem = self.not_progressing(self.status())
            started = self.pidfile.stat().st_mtime if self.pidfile.exists() else 0
            if problem and time.time() - started > self.STATUS_STALE_SECONDS:
                process_note = f"restarted (pid {pid} was running but {problem})"
                self.stop()
            elif stamp.exists() and stamp.read_text() == started_with:
                return f"reused (pid {pid})"
            else:
                process_note = None
                self.stop()  # started with other mappings (a topic was added) or older code: restart
        else:
            process_note = None
        stamp.write_text(started_with)
        self.status_file.unlink(missing_ok=True)  # the previous bridge's: the new one writes its own
        env = {**self.cfg.app_env(), "PYTHONUNBUFFERED": "1"}
        for secret in ("CG_DB_PASSWORD", "CG_REDIS_PASSWORD"):
            env.pop(secret, None)  # the bridge never needs database or Redis credentials; it pushes its lag
        pid = process.spawn(
            [str(self.cfg.app_python), str(self.code),
             "--config", str(self.mappings), "--status-file", str(self.status_file)],
            pidfile=self.pidfile, logfile=self.logfile, env=env, cwd=ROOT,
        )
        process.wait_until(lambda: True, timeout=1, what=self.name, pid=pid, logfile=self.logfile)
        return f"{process_note}; started (pid {pid})" if process_note else f"started (pid {pid})"


class BridgeWatch(Service):
    """The MSK bridge's supervisor: every CHECK_SECONDS it runs `Bridge.ensure()`, which starts a bridge
    that died and restarts one that runs without progressing (judged by its status file, see
    Bridge.not_progressing). Started by `./dev up`, stopped first by `./dev down`."""

    name = "bridge-watch"
    port_var = ""
    CHECK_SECONDS = 5

    @property
    def port(self) -> int:
        return 0

    def state(self) -> str:
        pid = self.own_pid()
        return f"running (pid {pid}, started by ./dev)" if pid else "stopped"

    def ensure(self) -> str:
        """Start the watcher, or restart it when this module changed since (its loop runs Bridge.ensure: an
        old watcher would judge the bridge by the old rules and restart it over and over)."""
        pid = self.own_pid()
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.cfg.run_dir / f"{self.name}.code"
        code = hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()
        note = "started"
        if pid is not None:
            if stamp.exists() and stamp.read_text() == code:
                return f"reused (pid {pid})"
            self.stop()
            note = f"restarted (pid {pid} ran older code)"
        stamp.write_text(code)
        pid = process.spawn([str(self.cfg.app_python), "-m", "devstack", "watch-bridge"],
                            pidfile=self.pidfile, logfile=self.logfile, env={"PYTHONUNBUFFERED": "1"}, cwd=ROOT)
        return f"{note} (pid {pid})"

    def watch(self) -> None:
        """The supervisor's loop (runs until SIGTERM)."""
        bridge = Bridge(self.cfg)
        while True:
            try:
                outcome = bridge.ensure()
                if not outcome.startswith("reused"):
                    print(json.dumps({"ts": time.time(), "msg": "msk-bridge " + outcome}), flush=True)
            except Exception as exc:  # noqa: BLE001 - e.g. no stack yet: try again next round
                print(json.dumps({"ts": time.time(), "msg": "msk-bridge check failed", "error": repr(exc)}), flush=True)
            time.sleep(self.CHECK_SECONDS)


BASE_SERVICES = (MariaDB, Redis, Kafka, Pushgateway, Prometheus)
ALL_SERVICES = (*BASE_SERVICES, LocalStack)


def stack_json(cfg: StackConfig) -> dict:
    path = cfg.state_dir / "stack.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_stack_json(cfg: StackConfig, record: dict) -> None:
    path = cfg.state_dir / "stack.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
