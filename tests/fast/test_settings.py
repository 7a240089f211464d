"""Settings: defaults, the variables' own spellings, and a clear error at start on a bad value. Pure: no service."""
from __future__ import annotations

import pytest

from chalicelib.settings import SettingsError, load_settings


def test_defaults_aliases_and_comma_separated_lists(monkeypatch):
    for name in ("CG_JOBS_QUEUE", "CG_DB_PORT", "CG_RATELIMIT_FAIL_CLOSED", "CG_METRICS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().db_port == 3306 and load_settings().metrics_enabled is True
    monkeypatch.setenv("CG_JOBS_QUEUE", "")  # empty counts as missing
    monkeypatch.setenv("CG_RATELIMIT_FAIL_CLOSED", "jobs_create, diagnosis,")
    monkeypatch.setenv("CG_METRICS_ENABLED", "off")
    monkeypatch.setenv("CG_SCALE_COOLDOWN", "60")
    settings = load_settings()
    assert settings.jobs_queue_name == "clustergenie-jobs"
    assert settings.ratelimit_fail_closed == frozenset({"jobs_create", "diagnosis"})
    assert settings.metrics_enabled is False and settings.scale_cooldown_seconds == 60


@pytest.mark.parametrize("variable,value", [
    ("CG_DB_PORT", "abc"), ("CG_DB_PORT", "70000"), ("CG_SCALE_COOLDOWN", "-1"), ("CG_MAX_BODY_BYTES", "0"),
    ("CG_METRICS_ENABLED", "maybe"), ("CG_KAFKA_COMPRESSION", "snappy"),
])
def test_a_bad_variable_fails_with_its_name(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"invalid configuration: {variable}: "):
        load_settings()


@pytest.mark.parametrize("value,producer_setting", [(None, "lz4"), ("gzip", "gzip"), ("none", None)])
def test_kafka_compression_is_the_producers_compression_type(monkeypatch, value, producer_setting):
    if value is None:
        monkeypatch.delenv("CG_KAFKA_COMPRESSION", raising=False)
    else:
        monkeypatch.setenv("CG_KAFKA_COMPRESSION", value)
    assert load_settings().kafka_compression_type == producer_setting
