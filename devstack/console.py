"""The web console (console/): built with npm only when its inputs changed, published to an S3 bucket
with static website hosting on LocalStack, its API base URL written next to it as config.json.

    build(cfg)                         -> console/dist (npm ci when the lockfile changed; vite build when sources did)
    publish(cfg, bucket, api_url)      -> the files and config.json in the stack's console bucket

The bucket is the stack's own (`ConsoleBucket` in infra/resources.json, outputs `ConsoleBucketName` and
`ConsoleUrl`). On AWS the same files go to a private bucket behind CloudFront with OAC (infra/README.md).
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import pathlib
import shutil
import subprocess

from devstack.config import ROOT, StackConfig
from devstack.process import StackError

CONSOLE_DIR = ROOT / "console"
DIST_DIR = CONSOLE_DIR / "dist"
BUILD_INPUTS = ("index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json", "src", "public")
MIN_NODE = (20, 19)  # Vite 8's floor


def _digest(paths: list[pathlib.Path], base: pathlib.Path | None = None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(base or CONSOLE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _build_inputs() -> list[pathlib.Path]:
    files: list[pathlib.Path] = []
    for name in BUILD_INPUTS:
        path = CONSOLE_DIR / name
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.exists():
            files.append(path)
    return files


def _check_node() -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        raise StackError("the console needs Node.js >= 20.19 and npm on PATH (node/npm not found)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < MIN_NODE:
        raise StackError(f"the console needs Node.js >= {MIN_NODE[0]}.{MIN_NODE[1]} (found {version})")


def build(cfg: StackConfig) -> tuple[pathlib.Path, str]:
    """console/dist, rebuilt only when its inputs changed. Returns (dist, what was done)."""
    deps_stamp = cfg.state_dir / "console-deps.stamp"
    build_stamp = cfg.state_dir / "console-build.stamp"
    lock_hash = _digest([CONSOLE_DIR / "package-lock.json"])
    done = []
    if not (CONSOLE_DIR / "node_modules").is_dir() or _read(deps_stamp) != lock_hash:
        _check_node()
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CONSOLE_DIR, check=True)
        deps_stamp.write_text(lock_hash)
        build_stamp.unlink(missing_ok=True)
        done.append("npm ci")
    source_hash = _digest(_build_inputs())
    if not (DIST_DIR / "index.html").exists() or _read(build_stamp) != source_hash:
        _check_node()
        subprocess.run(["npm", "run", "--silent", "build"], cwd=CONSOLE_DIR, check=True, stdout=subprocess.DEVNULL)
        build_stamp.write_text(source_hash)
        done.append("built")
    return DIST_DIR, " + ".join(done) or "build is current (no source change), reused"


def _s3(cfg: StackConfig):
    import boto3

    return boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def publish(cfg: StackConfig, bucket: str, api_url: str, dist: pathlib.Path = DIST_DIR) -> str:
    """Upload the build and its config.json to `bucket` unless that exact content is there already.
    Returns what was done."""
    config = json.dumps({"apiBaseUrl": api_url.rstrip("/")}, indent=2) + "\n"
    files = sorted(p for p in dist.rglob("*") if p.is_file())
    fingerprint = hashlib.sha256(config.encode() + _digest(files, dist).encode() + bucket.encode()).hexdigest()
    s3 = _s3(cfg)
    try:
        current = s3.head_object(Bucket=bucket, Key="config.json").get("Metadata", {}).get("fingerprint")
    except s3.exceptions.ClientError:
        current = None
    if current == fingerprint:
        return "published content is current, reused"
    for path in files:
        key = path.relative_to(dist).as_posix()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Hashed assets never change under one name; index.html must always be revalidated.
        cache = "public, max-age=31536000, immutable" if key.startswith("assets/") else "no-cache"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=kind, CacheControl=cache)
    s3.put_object(Bucket=bucket, Key="config.json", Body=config.encode(), ContentType="application/json",
                  CacheControl="no-cache", Metadata={"fingerprint": fingerprint})
    return f"published {len(files) + 1} files"


def _read(path: pathlib.Path) -> str:
    return path.read_text().strip() if path.exists() else ""
