"""Logs: correlation keys on every line (`context`), shipping to Kafka (`shipping`), the queryable store
(`store`); the log consumer function is `chalicelib/functions/log_consumer.py`."""
