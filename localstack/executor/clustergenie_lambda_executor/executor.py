"""LocalStack runtime executor that runs a Python Lambda as a long-lived local process.

One executor is one execution environment ("container"): `start()` spawns `runner.py` with the function's
interpreter (CG_LAMBDA_PYTHON), which imports the handler once; `invoke()` sends it one event at a time
over a socketpair. The handler's stdout/stderr become the invocation's logs. LocalStack may create several
executors per function (concurrent invokes), each with its own process.

Limits, on purpose: no isolation (same user, filesystem and network as LocalStack), no memory limit,
the host's Python. The function timeout is enforced by killing the process.
"""
from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

from localstack import config

from clustergenie_lambda_executor.framing import END_MARKER, recv_frame, send_frame
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor

LOG = logging.getLogger(__name__)

RUNNER = pathlib.Path(__file__).with_name("runner.py")
MAX_ENV_LOG_LINES = 5000
# How long to wait, after the result arrived, for the last log lines of the invocation to be read.
LOG_DRAIN_SECONDS = 2.0


def _lambda_python(runtime: str | None) -> str:
    """The interpreter that runs handlers: CG_LAMBDA_PYTHON, else `python3.X` from PATH for the runtime."""
    explicit = os.environ.get("CG_LAMBDA_PYTHON")
    if explicit:
        return explicit
    if runtime and runtime.startswith("python"):
        found = shutil.which(runtime)  # runtime "python3.11" -> python3.11 on PATH
        if found:
            return found
    raise LambdaRuntimeException(
        f"No Python for runtime {runtime!r}: set CG_LAMBDA_PYTHON to the interpreter (a venv's python) "
        "that has the function's dependencies"
    )


def _gateway_endpoint() -> tuple[str, int]:
    listen = config.GATEWAY_LISTEN[0]
    host = listen.host if listen.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return host, listen.port


def _error_bytes(error_type: str, message: str, request_id: str = "") -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": []}
    ).encode()


class _ChildGone(Exception):
    """The runner process exited (crash, os._exit, sys.exit, killed)."""


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """An execution environment backed by a local Python process (see module docstring)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._invoke_lock = threading.Lock()
        self._cond = threading.Condition()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._env: dict[str, str] | None = None
        self._stopped = False
        self._init_error: dict | None = None
        self._reader: threading.Thread | None = None
        self._env_logs: collections.deque[str] = collections.deque(maxlen=MAX_ENV_LOG_LINES)
        self._invoke_lines: list[str] = []
        self._markers: set[str] = set()
        self._log_file = self._open_log_file()

    # --- paths and environment --------------------------------------------------------------------------
    @property
    def _function_name(self) -> str:
        return self.function_version.id.function_name

    def _code_dir(self) -> str:
        code = self.function_version.config.code
        if code is None:
            raise LambdaRuntimeException("Container-image functions are not supported by the local-process executor")
        return str(code.get_unzipped_code_location())

    def _layer_paths(self) -> list[str]:
        """Where a layer's Python code would be under /opt on AWS: <layer>/python and its site-packages."""
        paths = []
        for layer in self.function_version.config.layers or []:
            if getattr(layer, "code", None) is None:
                continue
            root = pathlib.Path(layer.code.get_unzipped_code_location())
            paths.append(str(root / "python"))
            paths.extend(str(p) for p in sorted((root / "python" / "lib").glob("python3*/site-packages")))
        return paths

    def _open_log_file(self):
        state_dir = os.environ.get("CG_STATE_DIR")
        if not state_dir:
            return None
        try:
            log_dir = pathlib.Path(state_dir) / "log" / "lambda"
            log_dir.mkdir(parents=True, exist_ok=True)
            return open(log_dir / f"{self._function_name}.log", "a", buffering=1, encoding="utf-8")
        except OSError as exc:
            LOG.warning("Cannot open the Lambda log file under %s: %s", state_dir, exc)
            return None

    def _child_env(self, env_vars: dict[str, str]) -> dict[str, str]:
        # Only the function's own variables: LocalStack's settings must not leak into the handler.
        env = {key: str(value) for key, value in env_vars.items() if value is not None}
        host, port = _gateway_endpoint()
        env.setdefault("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        env["LOCALSTACK_HOSTNAME"] = host
        env["LAMBDA_TASK_ROOT"] = self._code_dir()
        env["PATH"] = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = os.environ.get("HOME", "/tmp")
        env.setdefault("LANG", "C.UTF-8")
        env["PYTHONUNBUFFERED"] = "1"  # log lines in order and on time
        return env

    # --- process management ---------------------------------------------------------------------------
    def _log_line(self, line: str) -> None:
        with self._cond:
            self._env_logs.append(line)
            self._invoke_lines.append(line)
        if self._log_file is not None:
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            try:
                self._log_file.write(f"{stamp} [{self.id[:8]}] {line}\n")
            except (OSError, ValueError):
                pass

    def _read_output(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.startswith(END_MARKER):
                with self._cond:
                    self._markers.add(line[len(END_MARKER):])
                    self._cond.notify_all()
            else:
                self._log_line(line)
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def _spawn(self, timeout: float) -> dict | None:
        """Start the runner and wait for its init; returns None when ready, else the init error document."""
        assert self._env is not None
        parent_sock, child_sock = socket.socketpair()
        python = _lambda_python(self.function_version.config.runtime)
        cmd = [python, "-u", str(RUNNER), str(child_sock.fileno()), self._code_dir(), *self._layer_paths()]
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=self._code_dir(),
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(child_sock.fileno(),),
                start_new_session=True,  # own process group: stop() kills whatever the handler spawned too
            )
        except OSError as exc:
            parent_sock.close()
            raise LambdaRuntimeException(f"Cannot start {python}: {exc}") from exc
        finally:
            child_sock.close()  # the child holds its copy; ours must go so a dead child reads as EOF
        self._proc, self._sock = proc, parent_sock
        self._reader = threading.Thread(
            target=self._read_output, args=(proc.stdout,), name=f"lambda-output-{self.id[:8]}", daemon=True
        )
        self._reader.start()
        LOG.debug("Started local process %s for %s (env %s)", proc.pid, self._function_name, self.id)

        parent_sock.settimeout(timeout)
        try:
            hello = recv_frame(parent_sock)
        except (socket.timeout, OSError):
            hello = None
        self._wait_marker("init", LOG_DRAIN_SECONDS)
        if hello is not None and hello.get("type") == "ready":
            return None
        self._kill()
        if hello is not None and hello.get("type") == "init_error":
            return hello["error"]
        status = self._exit_status()
        return json.loads(
            _error_bytes("Runtime.ExitError", f"Runtime exited during init: {status}. See the function's log.")
        )

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._sock is not None

    def _exit_status(self) -> str:
        if self._proc is None:
            return "not started"
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            return f"signal: {signal.Signals(-code).name}"
        return f"exit status {code}"

    def _kill(self) -> None:
        proc, sock = self._proc, self._sock
        self._sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                LOG.warning("Local Lambda process %s did not exit after SIGKILL", proc.pid)

    def _wait_marker(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while marker not in self._markers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._markers.discard(marker)

    # --- RuntimeExecutor API --------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        self._env = self._child_env(env_vars)
        with self._invoke_lock:
            self._init_error = self._spawn(timeout=float(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT))
        if self._stopped:
            # LocalStack gave up on this environment (startup timeout, deletion): report a failed start.
            raise LambdaRuntimeException(f"Execution environment {self.id} was stopped during startup")
        if self._init_error is not None:
            # As on AWS, an init error is reported by the invocation (and init is retried on the next one).
            LOG.warning("Init of %s failed: %s", self._function_name, self._init_error.get("errorMessage"))

    def stop(self) -> None:
        self._stopped = True
        self._kill()
        if self._log_file is not None:
            try:
                self._log_file.close()
            except OSError:
                pass
            self._log_file = None

    def get_address(self) -> str:
        return _gateway_endpoint()[0]

    def get_endpoint_from_executor(self) -> str:
        return _gateway_endpoint()[0]

    def get_runtime_endpoint(self) -> str:
        host, port = _gateway_endpoint()
        return f"http://{host}:{port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout or 3)
        started = time.monotonic()
        with self._invoke_lock:
            with self._cond:
                self._invoke_lines = []
            self._log_line(f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}")
            is_error, body, max_rss_kb = self._invoke_locked(payload, request_id, timeout, started)
            duration_ms = (time.monotonic() - started) * 1000
            self._log_line(f"END RequestId: {request_id}")
            self._log_line(
                f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                f"Billed Duration: {int(duration_ms) + 1} ms\t"
                f"Memory Size: {self.function_version.config.memory_size} MB\t"
                f"Max Memory Used: {max_rss_kb // 1024} MB"
            )
            with self._cond:
                logs = "\n".join(self._invoke_lines) + "\n"
                self._invoke_lines = []
        return InvocationResult(request_id=request_id, payload=body, is_error=is_error, logs=logs)

    def _invoke_locked(self, payload: dict, request_id: str, timeout: float, started: float) -> tuple[bool, bytes, int]:
        if self._stopped:
            return True, _error_bytes("Runtime.Unavailable", "Execution environment stopped", request_id), 0
        if self._init_error is not None:
            error, self._init_error = self._init_error, None
            return True, json.dumps({**error, "requestId": request_id}).encode(), 0
        if not self._alive():
            # The previous invocation crashed or timed out: a fresh init, paid by this invocation (as on AWS).
            init_error = self._spawn(timeout=timeout)
            if init_error is not None:
                return True, json.dumps({**init_error, "requestId": request_id}).encode(), 0
        deadline_s = time.time() + timeout - (time.monotonic() - started)
        request = {
            "type": "invoke",
            "request_id": request_id,
            "invoked_function_arn": payload.get("invoked-function-arn", ""),
            "payload": payload.get("payload", ""),
            "trace_id": payload.get("trace-id", ""),
            "deadline_ms": int(deadline_s * 1000),
        }
        sock = self._sock
        try:
            send_frame(sock, request)
            sock.settimeout(max(0.001, deadline_s - time.time()))
            response = recv_frame(sock)
            if response is None:
                raise _ChildGone()
        except socket.timeout:
            self._kill()
            self._log_line(f"{request_id} Task timed out after {timeout:.2f} seconds")
            return True, _error_bytes(
                "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds", request_id
            ), 0
        except (_ChildGone, OSError):
            status = self._exit_status()
            self._kill()
            self._wait_drain()
            message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
            self._log_line(message)
            return True, _error_bytes("Runtime.ExitError", message, request_id), 0
        self._wait_marker(request_id, LOG_DRAIN_SECONDS)
        max_rss_kb = int(response.get("max_rss_kb") or 0)
        if response.get("ok"):
            return False, response["payload"].encode(), max_rss_kb
        error = response.get("error") or {}
        error["requestId"] = request_id
        return True, json.dumps(error).encode(), max_rss_kb

    def _wait_drain(self) -> None:
        """After a crash, let the output reader collect the last lines the process wrote (until EOF)."""
        if self._reader is not None:
            self._reader.join(timeout=1.0)

    def get_logs(self) -> str:
        with self._cond:
            return "\n".join(self._env_logs)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # Unzip the code (and layers) where get_unzipped_code_location() points, as the Docker executor does.
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers or []:
            if getattr(layer, "code", None) is not None:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        python = os.environ.get("CG_LAMBDA_PYTHON")
        if python and not os.access(python, os.X_OK):
            LOG.warning("CG_LAMBDA_PYTHON=%s is not an executable: Lambda functions will fail to start", python)
            return False
        if not python:
            LOG.warning("CG_LAMBDA_PYTHON is not set: handlers run with python3.X from PATH, matching the runtime")
        return True
