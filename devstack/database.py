"""The app's own databases and user, and the migration runner (yoyo-migrations over pymysql)."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from devstack.config import HOST, ROOT, StackConfig

MIGRATIONS_DIR = ROOT / "migrations"


def bootstrap(cfg: StackConfig, admin_connect: Callable) -> None:
    """Create the app and test databases and the app user (never root), then apply migrations."""
    password = cfg.db_password()
    conn = admin_connect()
    try:
        with conn.cursor() as cur:
            for db in (cfg.db_name, cfg.test_db_name):
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for host in (HOST, "localhost"):
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (cfg.db_user, host, password))
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (cfg.db_user, host, password))
                for db in (cfg.db_name, cfg.test_db_name):
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@%s", (cfg.db_user, host))
    finally:
        conn.close()
    for db in (cfg.db_name, cfg.test_db_name):
        migrate(cfg, db, "apply")


def database_url(cfg: StackConfig, db: str) -> str:
    return f"mysql://{quote(cfg.db_user)}:{quote(cfg.db_password(), safe='')}@{HOST}:{cfg.mysql_port}/{db}"


def migrate(cfg: StackConfig, db: str, direction: str = "apply", count: int | None = None) -> list[str]:
    """Apply pending migrations (or roll back the last `count`) and return the ids it touched."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(database_url(cfg, db))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        if direction == "apply":
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
        else:
            todo = backend.to_rollback(migrations)
            if count is not None:
                todo = todo[:count]
            backend.rollback_migrations(todo)
    return [m.id for m in todo]
