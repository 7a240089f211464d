"""The one JSON log formatter: Powertools' own, formatting each record once for every handler.

stdout and the Kafka shipper (`shipping.py`) share this formatter. It remembers the last record it
formatted, so the second handler of the same record reuses the line rather than running the
Powertools formatter again (about half the cost of a log line, docs/benchmarks.md). Only the very last
record is remembered: a record from another thread in between means the line is formatted again,
never that a wrong line is reused.
"""
from __future__ import annotations

import logging

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter


class FormatOnce(LambdaPowertoolsFormatter):
    _last: tuple[logging.LogRecord, str] | None = None

    def format(self, record: logging.LogRecord) -> str:  # noqa: A003 - logging's name
        last = self._last  # one read of one tuple: safe against another thread replacing it
        if last is not None and last[0] is record:
            return last[1]
        line = super().format(record)
        self._last = (record, line)
        return line
