"""A LocalStack Lambda runtime executor that runs Python handlers as local processes (no Docker)."""
