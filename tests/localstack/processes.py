"""Finding the deployed functions' local processes (the executor runs each as a process on this machine)."""
from __future__ import annotations

import os
import pathlib


def function_pids(function_name: str) -> list[int]:
    """The processes running `function_name` (found by their AWS_LAMBDA_FUNCTION_NAME)."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def pid_with_local_port(pids: list[int], port: int) -> int | None:
    """The process among `pids` that owns a TCP socket whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for pid in pids:
        try:
            for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None
