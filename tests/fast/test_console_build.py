"""`./dev up` rebuilds the web console only when it must: `npm ci` when the lockfile changed, the build when
any source changed, nothing on a warm tree. npm itself is replaced by a recorder (a real `npm ci` needs the
registry and takes seconds; the real build is exercised by every `./dev up` and the browser tier)."""
from __future__ import annotations

import json

import pytest

from devstack import console
from devstack.config import ROOT, StackConfig


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A console source tree and state dir in tmp_path; `npm` calls are recorded, and a build writes dist."""
    src = tmp_path / "console"
    (src / "src").mkdir(parents=True)
    (src / "package-lock.json").write_text('{"lockfileVersion": 3}')
    (src / "index.html").write_text("<!doctype html>")
    (src / "src" / "main.tsx").write_text("export {};")
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CG_STATE_DIR", str(state))
    monkeypatch.setattr(console, "CONSOLE_DIR", src)
    monkeypatch.setattr(console, "DIST_DIR", src / "dist")
    monkeypatch.setattr(console, "_check_node", lambda: None)
    calls: list[str] = []

    def npm(args, cwd, check, **_):
        calls.append(" ".join(args[1:]))
        if args[1] == "ci":
            (cwd / "node_modules").mkdir(exist_ok=True)
        else:
            (cwd / "dist").mkdir(exist_ok=True)
            (cwd / "dist" / "index.html").write_text("built")

    monkeypatch.setattr(console.subprocess, "run", npm)
    return src, calls


def test_first_run_installs_and_builds_then_a_warm_run_does_nothing(tree):
    src, calls = tree
    cfg = StackConfig.from_env()
    assert console.build(cfg)[1] == "npm ci + built"
    assert console.build(cfg)[1].startswith("build is current")
    assert calls == ["ci --no-audit --no-fund --loglevel=error", "run --silent build"]


def test_a_source_change_rebuilds_without_reinstalling(tree):
    src, calls = tree
    cfg = StackConfig.from_env()
    console.build(cfg)
    (src / "src" / "main.tsx").write_text("export const changed = 1;")
    assert console.build(cfg)[1] == "built"
    assert calls[-1] == "run --silent build" and calls.count("ci --no-audit --no-fund --loglevel=error") == 1


def test_a_lockfile_change_reinstalls_and_rebuilds(tree):
    src, calls = tree
    cfg = StackConfig.from_env()
    console.build(cfg)
    (src / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}')
    assert console.build(cfg)[1] == "npm ci + built"
    assert len(calls) == 4


def test_the_api_allows_the_origin_the_stack_serves_the_console_from():
    # The template hands the functions the console's website origin (CORS) built exactly as its ConsoleUrl output.
    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    origin = template["Globals"]["Function"]["Environment"]["Variables"]["CG_CONSOLE_ORIGIN"]
    url = template["Outputs"]["ConsoleUrl"]["Value"]
    assert origin["Fn::If"][0] == url["Fn::If"][0]
    assert origin["Fn::If"][1]["Fn::Sub"] + "/" == url["Fn::If"][1]["Fn::Sub"]
    assert origin["Fn::If"][2] == url["Fn::If"][2]
