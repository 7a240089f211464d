"""The app's own databases and users, and the migration runner (yoyo-migrations over pymysql).

Least privilege (issue 18): the migration user owns the schemas (ALL on the app's and the test database) and
runs the migrations; the app's user only reads and writes rows, table by table, and may only append to
`audit_log` (SELECT, INSERT). Root is used for nothing but creating those users and databases.
"""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from devstack.config import HOST, ROOT, StackConfig

MIGRATIONS_DIR = ROOT / "migrations"

# The app's user reads its whole schema (SELECT schema-wide also covers the Sequence engine's virtual
# `seq_0_to_N` tables) and writes rows table by table (GET_LOCK needs no privilege); append-only tables get less.
APP_WRITES = "INSERT, UPDATE, DELETE"
APPEND_ONLY = {"audit_log": "INSERT"}


def _users(cur, user: str, password: str) -> list[tuple[str, str]]:  # noqa: ANN001 - a pymysql cursor
    accounts = [(user, host) for host in (HOST, "localhost")]
    for account in accounts:
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (*account, password))
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (*account, password))
    return accounts


def bootstrap(cfg: StackConfig, admin_connect: Callable) -> None:
    """Create the app and test databases, the migration user and the app user (never root), apply the
    migrations as the migration user, then grant the app user reads on its schema and row writes per table."""
    import pymysql

    dbs = (cfg.db_name, cfg.test_db_name)
    conn = admin_connect()
    try:
        with conn.cursor() as cur:
            for db in dbs:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for account in _users(cur, cfg.MIGRATION_USER, cfg.migration_password()):
                for db in dbs:
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@%s", account)
            app_accounts = _users(cur, cfg.db_user, cfg.db_password())
            for account in app_accounts:  # no schema-wide grant (a stack bootstrapped before issue 18 had ALL)
                for db in dbs:
                    try:
                        cur.execute(f"REVOKE ALL PRIVILEGES ON `{db}`.* FROM %s@%s", account)
                    except pymysql.err.OperationalError as exc:
                        if exc.args[0] != 1141:  # 1141: there was no such grant
                            raise
        for db in dbs:
            migrate(cfg, db, "apply")
        with conn.cursor() as cur:
            for db in dbs:
                _redefine_triggers(cur, db, cfg.db_user, cfg.MIGRATION_USER)
                cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                            "AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_yoyo%%' "
                            "AND table_name NOT LIKE 'yoyo%%'", (db,))
                tables = [table for (table,) in cur.fetchall()]
                for account in app_accounts:
                    cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@%s", account)
                    for table in tables:
                        cur.execute(f"GRANT {APPEND_ONLY.get(table, APP_WRITES)} ON `{db}`.`{table}` TO %s@%s", account)
    finally:
        conn.close()


def _redefine_triggers(cur, db: str, app_user: str, owner: str) -> None:  # noqa: ANN001 - a pymysql cursor
    """Triggers created when the app's user ran the migrations (before issue 18) run with its privileges,
    which no longer include TRIGGER: re-create them, unchanged, with the migration user as their definer."""
    cur.execute("SELECT trigger_name, action_timing, event_manipulation, event_object_table, action_statement "
                "FROM information_schema.triggers WHERE trigger_schema = %s AND definer LIKE %s",
                (db, f"{app_user}@%"))
    for name, timing, event, table, statement in cur.fetchall():
        cur.execute(f"DROP TRIGGER `{db}`.`{name}`")
        cur.execute(f"CREATE DEFINER = `{owner}`@`{HOST}` TRIGGER `{db}`.`{name}` {timing} {event} "
                    f"ON `{db}`.`{table}` FOR EACH ROW {statement}")


def database_url(cfg: StackConfig, db: str) -> str:
    """The migration user's URL (yoyo creates and alters tables; the app's user may not)."""
    return (f"mysql://{quote(cfg.MIGRATION_USER)}:{quote(cfg.migration_password(), safe='')}"
            f"@{HOST}:{cfg.mysql_port}/{db}")


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
