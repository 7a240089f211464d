"""What `./dev` installs into the state dir: LocalStack's own venv (Python 3.13) with our executor plugin."""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess

from devstack.config import ROOT, StackConfig
from devstack.process import StackError

LOCALSTACK_REQUIREMENTS = ROOT / "localstack" / "requirements.txt"
EXECUTOR_DIR = ROOT / "localstack" / "executor"


def find_python313() -> str:
    # Real interpreters first: a pyenv shim exists even when its version is not selected, and then fails.
    candidates = [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
                  *sorted(glob.glob("/root/.pyenv/versions/3.13*/bin/python3.13")), shutil.which("python3.13")]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    raise StackError("LocalStack needs Python 3.13 (python3.13 on PATH or under pyenv); none was found")


def _fingerprint() -> str:
    digest = hashlib.sha256(LOCALSTACK_REQUIREMENTS.read_bytes())
    for path in sorted(EXECUTOR_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_localstack_venv(cfg: StackConfig) -> None:
    """Create or refresh the venv when the pins or the plugin changed; otherwise do nothing."""
    venv = cfg.localstack_venv
    stamp = venv / ".clustergenie-stamp"
    want = _fingerprint()
    if stamp.exists() and stamp.read_text() == want:
        return
    if not (venv / "bin" / "python").exists():
        subprocess.run([find_python313(), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(LOCALSTACK_REQUIREMENTS)], check=True)
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(EXECUTOR_DIR)], check=True)
    stamp.write_text(want)
