"""The layering rules, as grep-able checks over the source (pure: reads files only).

- SQL and pymysql only in `repositories/` and `db.py`;
- an SQS client only in the job-queue module;
- no Chalice (or the HTTP edge) under `services/`, `repositories/` or `models/`;
- domain errors know nothing of HTTP.
"""
from __future__ import annotations

import pathlib
import re

import pytest

LIB = pathlib.Path(__file__).resolve().parents[2] / "chalicelib"
SOURCES = sorted(LIB.rglob("*.py"))
SQL = re.compile(r"\bSELECT\b.+\bFROM\b|\bINSERT\s+(IGNORE\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|"
                 r"\bREPLACE\s+INTO\b")  # statements are written in capitals


def offenders(pattern: re.Pattern[str], allowed: callable) -> list[str]:
    return [f"{path.relative_to(LIB.parent)}:{n}: {line.strip()}"
            for path in SOURCES if not allowed(path.relative_to(LIB).as_posix())
            for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]


def test_sql_and_pymysql_only_in_repositories_and_db():
    allowed = lambda rel: rel.startswith("repositories/") or rel == "db.py"  # noqa: E731
    # lazy_imports.py names the driver's `_auth` module to load it without cryptography (issue 16); it imports
    # nothing of the driver and runs no SQL (the two checks below still hold it to that).
    assert offenders(re.compile(r"\bpymysql\b"), lambda rel: allowed(rel) or rel == "lazy_imports.py") == []
    assert offenders(SQL, allowed) == []
    assert offenders(re.compile(r"from chalicelib import db\b|chalicelib\.db\b"), allowed) == []


def test_sqs_only_in_the_job_queue_module():
    assert offenders(re.compile(r"""client\(\s*["']sqs["']|\bboto3\b.*sqs|get_queue_url"""),
                     lambda rel: rel == "jobs_queue.py") == []


@pytest.mark.parametrize("layer", ["services/", "repositories/", "models/"])
def test_no_framework_or_http_edge_below_the_api(layer):
    rule = re.compile(r"^\s*(from|import)\s+(chalice\b|chalicelib\.http\b|chalicelib\.api\b)")
    assert offenders(rule, lambda rel: not rel.startswith(layer)) == []


def test_domain_errors_carry_no_http():
    text = (LIB / "errors.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+chalice\b", text, re.MULTILINE)
    assert "status_code" not in text and "headers" not in text


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The patterns themselves: each flags a line that breaks its rule (so the checks above can fail)."""
    assert SQL.search('cur.execute("SELECT id FROM jobs")') and SQL.search("'DELETE FROM t'")
    assert SQL.search('"UPDATE jobs SET x = 1"') and SQL.search('"INSERT IGNORE INTO t VALUES (1)"')
    assert not SQL.search('logger.info("select a cluster")') and not SQL.search('"""DELETE body (or query)"""')
    assert re.search(r"""client\(\s*["']sqs["']""", 'client("sqs")')
