"""The floor's raw DB-API connections (sqlite3, MySQLdb), set up as Django sets up the shop's."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlparse

from mall.db import LOCK_CONFLICT_ERROR_CODES


class Driver:
    """A raw DB-API connection set up as Django sets up the shop's."""

    def __init__(self, database_url: str, options: dict):
        self.vendor = "sqlite" if database_url.startswith("sqlite") else "mysql"
        if self.vendor == "sqlite":
            import sqlite3

            sqlite3.register_adapter(Decimal, str)  # as Django does
            path = urlparse(database_url).path
            self.connection = sqlite3.connect(path, timeout=options.get("timeout", 30), isolation_level=None)
            for pragma in options.get("init_command", "").split(";"):
                if pragma.strip():
                    self.connection.execute(pragma)
        else:
            import MySQLdb
            from MySQLdb.constants import CLIENT

            url = urlparse(database_url)
            self.connection = MySQLdb.connect(
                host=url.hostname or "127.0.0.1",
                port=url.port or 3306,
                user=url.username or "root",
                password=url.password or "",
                database=url.path.lstrip("/"),
                charset=options.get("charset", "utf8mb4"),
                init_command=options.get("init_command", ""),
                client_flag=CLIENT.FOUND_ROWS,
            )
            level = options.get("isolation_level", "read committed").upper()
            self.connection.cursor().execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
            self.connection.autocommit(True)

    def sql(self, statement: str) -> str:
        return statement.replace("%s", "?") if self.vendor == "sqlite" else statement

    def begin(self) -> None:
        if self.vendor == "mysql":
            self.connection.autocommit(False)

    def commit(self) -> None:
        self.connection.commit()
        if self.vendor == "mysql":
            self.connection.autocommit(True)

    def rollback(self) -> None:
        self.connection.rollback()
        if self.vendor == "mysql":
            self.connection.autocommit(True)

    @staticmethod
    def retryable(exc: Exception) -> bool:
        """As the shop: a lock wait timeout or a deadlock runs the transaction again."""
        return bool(exc.args) and exc.args[0] in LOCK_CONFLICT_ERROR_CODES

    def close(self) -> None:
        self.connection.close()
