"""Entry point behind `./dev` (which first installs Debian packages and the app's venv).

    ./dev up                  start every service, migrate, deploy the stack to LocalStack, start the bridge
    ./dev test [fast|localstack|browser|faults|all] [pytest args...]
    ./dev screenshots         a screenshot of each console page into docs/console/ (demo data via the API)
    ./dev down                stop what ./dev started (by pid); external servers are left alone
    ./dev status              each service's state and the API URL
    ./dev logs [service]      tail the logs
    ./dev migrate [apply|rollback [N]] [--test]
    ./dev apikey create --tenant T --role viewer|operator|admin [--name N]
                              print a new API key for the stack (shown this once)
    ./dev watch-bridge        (started by ./dev up) restart the MSK bridge when it dies or stops progressing
    ./dev replay events       deliver the batches parked in the event handler's on-failure queue again
    ./dev rotate-event-key    a new event signing key (the old one still accepted), in stack.env and the stack's secret
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time

from devstack import deploy as stack_deploy
from devstack import process
from devstack.config import ROOT, StackConfig
from devstack.process import StackError
from devstack.services import (ALL_SERVICES, BASE_SERVICES, Bridge, BridgeWatch, Prometheus, http_get, stack_json,
                               write_stack_json)

DEPLOY_INPUTS = ("app.py", "chalicelib", "requirements.txt", ".chalice/config.json", "infra/resources.json",
                 "devstack/deploy.py")


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def ensure_services(cfg: StackConfig, services) -> None:
    for service_cls in services:
        service = service_cls(cfg)
        started = time.monotonic()
        outcome = service.ensure()
        say(f"{service.name:<12} {outcome} on 127.0.0.1:{service.port} ({time.monotonic() - started:.1f}s)")
    cfg.write_stack_env()


def _deploy_fingerprint(cfg: StackConfig) -> str:
    """The deploy's inputs: the code, the template fragment, and this machine's parameters."""
    digest = hashlib.sha256()
    for name in DEPLOY_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                digest.update(file.relative_to(ROOT).as_posix().encode())
                digest.update(file.read_bytes())
    digest.update(json.dumps({k: v for k, v in cfg.app_env().items() if k != "CG_DB_PASSWORD"},
                             sort_keys=True).encode())
    digest.update(hashlib.sha256(cfg.db_password().encode()).digest())
    return digest.hexdigest()


def _deployment_alive(cfg: StackConfig, stack: dict) -> bool:
    """The recorded stack still exists, complete, in this LocalStack (which keeps nothing across restarts),
    and its API answers."""
    api_url = stack.get("api_url")
    if not api_url or stack.get("stack_name") != cfg.stack_name:
        return False
    try:
        cfn = stack_deploy.clients(cfg)["cloudformation"]
        if stack_deploy.stack_status(cfn, cfg.stack_name) not in stack_deploy.DONE:
            return False
        status, _ = http_get(f"{api_url.rstrip('/')}/api/v1/openapi.json", timeout=30)
    except Exception:  # noqa: BLE001 - any failure means: deploy again
        return False
    return status == 200


def deploy(cfg: StackConfig) -> dict:
    """Deploy when the code changed, one deployer at a time (concurrent `./dev test` runs share LocalStack)."""
    with open(cfg.run_dir / "deploy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _deploy_locked(cfg)


def _deploy_locked(cfg: StackConfig) -> dict:
    stamp = cfg.state_dir / "deploy.stamp"
    fingerprint = _deploy_fingerprint(cfg)
    stack = stack_json(cfg)
    if stamp.exists() and stamp.read_text() == fingerprint and _deployment_alive(cfg, stack):
        say("app          deployment is current (no code change), reused")
        return stack
    started = time.monotonic()
    out_dir = cfg.state_dir / "package"
    pkg = stack_deploy.package(out_dir, cfg.app_python)
    say(f"app          packaged ({time.monotonic() - started:.1f}s)")
    record = stack_deploy.deploy(cfg, cfg.stack_name, pkg)
    write_stack_json(cfg, record)
    stamp.write_text(fingerprint)
    say(f"app          stack {cfg.stack_name} deployed to LocalStack ({time.monotonic() - started:.1f}s)")
    return record


def check_api(cfg: StackConfig, stack: dict) -> None:
    from devstack.apikeys import read_admin_key

    url = f"{stack['api_url'].rstrip('/')}/api/v1/clusters"
    key = read_admin_key(cfg)
    deadline = time.monotonic() + 60
    last = ""
    while time.monotonic() < deadline:
        try:
            status, body = http_get(url, timeout=30, headers={"X-API-Key": key} if key else None)
            if status == 200:
                say(f"GET {url} -> 200")
                return
            last = f"{status} {body[:200]}"
        except Exception as exc:  # noqa: BLE001 - report whatever the last failure was
            last = str(exc)
        time.sleep(1)
    raise StackError(f"the API did not answer 200 at {url}: {last}")


def cmd_up(cfg: StackConfig) -> None:
    started = time.monotonic()
    ensure_services(cfg, ALL_SERVICES)
    stack = deploy(cfg)
    prometheus = Prometheus(cfg)  # now that the API has a URL, Prometheus scrapes its /metrics too
    prometheus.write_config(stack["api_url"].rstrip("/") + "/metrics")
    say(f"{'prometheus':<12} {prometheus.reload()}")
    say(f"{'msk-bridge':<12} {Bridge(cfg).ensure()}")
    say(f"{'bridge-watch':<12} {BridgeWatch(cfg).ensure()}")
    from devstack.apikeys import ensure_admin_key

    say(f"{'admin key':<12} {ensure_admin_key(cfg)}: {cfg.admin_key_file} (owner-only; send it as X-API-Key)")
    check_api(cfg, stack)
    console_url = deploy_console(cfg, stack)
    say(f"stack up in {time.monotonic() - started:.1f}s")
    print(f"\nAPI base URL: {stack['api_url']}\n  try: curl -H \"X-API-Key: $(cat {cfg.admin_key_file})\" "
          f"{stack['api_url'].rstrip('/')}/api/v1/clusters\n"
          f"Console:      {console_url}\n")


def deploy_console(cfg: StackConfig, stack: dict) -> str:
    """Build the console when its sources changed and publish it to the stack's console bucket
    (devstack/console.py); its URL is the stack's `ConsoleUrl` output."""
    from devstack import console

    started = time.monotonic()
    dist, built = console.build(cfg)
    published = console.publish(cfg, stack["console_bucket"], stack["api_url"], dist)
    say(f"{'console':<12} {built}; {published} ({time.monotonic() - started:.1f}s)")
    return stack["console_url"]


def cmd_test(cfg: StackConfig, args: list[str]) -> int:
    tier = "all"
    if args and args[0] in ("fast", "localstack", "browser", "faults", "all"):
        tier, args = args[0], args[1:]
    started = time.monotonic()
    if tier == "fast":
        ensure_services(cfg, BASE_SERVICES)
        selection = ["-m", "not localstack"]
    else:
        cmd_up(cfg)
        selection = {"localstack": ["-m", "localstack"], "browser": ["-m", "browser"],
                     "faults": ["-m", "faults"]}.get(tier, [])
    say(f"stack ready in {time.monotonic() - started:.1f}s; running the {tier} tier")
    env = {**os.environ, **cfg.app_env()}
    result = subprocess.run([str(cfg.app_python), "-m", "pytest", *selection, *args], env=env, cwd=ROOT)
    say(f"./dev test {tier} finished in {time.monotonic() - started:.1f}s (exit {result.returncode})")
    return result.returncode


def cmd_screenshots(cfg: StackConfig) -> None:
    from devstack import screenshots

    cmd_up(cfg)
    stack = stack_json(cfg)
    from devstack.apikeys import read_admin_key

    for path in screenshots.take(stack["console_url"], stack["api_url"], key=read_admin_key(cfg)):
        say(f"wrote {path.relative_to(ROOT)}")


def cmd_down(cfg: StackConfig) -> None:
    for service_cls in (BridgeWatch, Bridge, *reversed(ALL_SERVICES)):
        service = service_cls(cfg)
        if service.stop():
            say(f"{service.name:<12} stopped")
        elif service.port and process.port_in_use(service.port):
            say(f"{service.name:<12} not started by ./dev, left running")


def cmd_status(cfg: StackConfig) -> None:
    for service_cls in (*ALL_SERVICES, Bridge, BridgeWatch):
        service = service_cls(cfg)
        where = f"127.0.0.1:{service.port}" if service.port else ""
        print(f"{service.name:<12} {where:<16} {service.state()}")
    stack = stack_json(cfg)
    if stack:
        print(f"\nstack {stack.get('stack_name')} (deployed {stack.get('deployed_at')})")
        print(f"API base URL: {stack.get('api_url')}")
        auth = "ON (API key or bearer token required)" if cfg.auth_enabled == "true" else \
            "OFF (local stage only: every caller is an admin)"
        print(f"auth:         {auth}; admin key: {cfg.admin_key_file if cfg.admin_key_file.exists() else 'none yet'}")
        print(f"console:      {stack.get('console_url')} (bucket {stack.get('console_bucket')})")
        for role, name in sorted(stack.get("functions", {}).items()):
            print(f"  function {role:<17} {name}")
        for key, url in sorted(stack.get("queues", {}).items()):
            print(f"  queue    {key:<17} {url}")
        for role, name in sorted(stack.get("rules", {}).items()):
            print(f"  rule     {role:<17} {name}")


def cmd_logs(cfg: StackConfig, args: list[str]) -> None:
    names = args or [s.name for s in (*ALL_SERVICES, Bridge)]
    for name in names:
        path = cfg.log_dir / f"{name}.log"
        print(process.log_tail(path, lines=40) or f"(no log for {name})")


def cmd_migrate(cfg: StackConfig, args: list[str]) -> None:
    from devstack.database import migrate

    db = cfg.test_db_name if "--test" in args else cfg.db_name
    args = [a for a in args if a != "--test"]
    direction = args[0] if args else "apply"
    count = int(args[1]) if len(args) > 1 else (1 if direction == "rollback" else None)
    touched = migrate(cfg, db, direction, count)
    say(f"{direction} on {db}: {', '.join(touched) or 'nothing to do'}")


def cmd_apikey(cfg: StackConfig, args: list[str]) -> int:
    import argparse

    from devstack.apikeys import create_key

    parser = argparse.ArgumentParser(prog="./dev apikey")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create an API key and print it (shown this once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    create.add_argument("--name", default="created with ./dev apikey")
    opts = parser.parse_args(args)
    ensure_services(cfg, [s for s in BASE_SERVICES if s.name == "mariadb"])
    print(create_key(cfg, opts.tenant, opts.role, opts.name))
    return 0


def cmd_replay(cfg: StackConfig, args: list[str]) -> int:
    """`./dev replay events`: the bridge's own replay (same event, same Invoke) of the on-failure queue."""
    if args != ["events"]:
        print("usage: ./dev replay events", file=sys.stderr)
        return 2
    bridge = Bridge(cfg)
    mappings = stack_json(cfg).get("kafka_mappings")
    if not mappings:
        raise StackError("stack.json has no kafka_mappings: deploy the stack first (./dev up)")
    bridge.mappings.parent.mkdir(parents=True, exist_ok=True)
    bridge.mappings.write_text(json.dumps({"mappings": mappings}, indent=2) + "\n")
    env = {**cfg.app_env(), "PYTHONUNBUFFERED": "1"}
    env.pop("CG_DB_PASSWORD", None)
    from chalicelib.settings import Settings

    topic = Settings.model_fields["events_topic"].default
    return subprocess.run([str(cfg.app_python), str(bridge.code), "--config", str(bridge.mappings), "--replay", topic],
                          env=env, cwd=ROOT, timeout=1800).returncode


def main(argv: list[str]) -> int:
    cfg = StackConfig.from_env()
    cmd, args = (argv[0], argv[1:]) if argv else ("help", [])
    try:
        if cmd == "up":
            cmd_up(cfg)
        elif cmd == "test":
            return cmd_test(cfg, args)
        elif cmd == "screenshots":
            cmd_screenshots(cfg)
        elif cmd == "down":
            cmd_down(cfg)
        elif cmd == "status":
            cmd_status(cfg)
        elif cmd == "logs":
            cmd_logs(cfg, args)
        elif cmd == "migrate":
            cmd_migrate(cfg, args)
        elif cmd == "apikey":
            return cmd_apikey(cfg, args)
        elif cmd == "watch-bridge":  # what `./dev up` runs in the background (bridge-watch)
            BridgeWatch(cfg).watch()
        elif cmd == "replay":
            return cmd_replay(cfg, args)
        elif cmd == "rotate-event-key":
            stack_deploy.rotate_event_key(cfg)
            say("event signing key rotated: new current key, the previous one still accepted")
        else:
            print(__doc__)
            return 0 if cmd in ("help", "-h", "--help") else 2
    except StackError as exc:
        print(f"[dev] error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"[dev] error: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
