"""Background processes owned by `./dev`: started detached with a pid file and a log, stopped by pid."""
from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from devstack.config import HOST


class StackError(RuntimeError):
    """A problem the user must act on; printed without a traceback."""


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_pid(pidfile: pathlib.Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def spawn(
    argv: list[str],
    *,
    pidfile: pathlib.Path,
    logfile: pathlib.Path,
    env: dict[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> int:
    """Start `argv` in its own session (so `down` can stop its children too) and record its pid."""
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def stop(pidfile: pathlib.Path, *, grace: float = 15.0) -> bool:
    """SIGTERM the process group recorded in `pidfile`, then SIGKILL after `grace` seconds."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    # Children left in the group (e.g. Lambda runtimes) go with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, pid: int | None = None,
               logfile: pathlib.Path | None = None) -> None:
    """Poll `check` until true; fail fast with the log's tail if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        if pid is not None and not pid_alive(pid):
            raise StackError(f"{what} exited during start-up.{log_tail(logfile)}")
        time.sleep(0.25)
    raise StackError(f"{what} was not ready after {timeout:.0f}s.{log_tail(logfile)}")


def log_tail(logfile: pathlib.Path | None, lines: int = 25) -> str:
    if logfile is None or not logfile.exists():
        return ""
    tail = logfile.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {logfile} ---\n" + "\n".join(tail)
