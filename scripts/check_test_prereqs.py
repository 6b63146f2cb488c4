#!/usr/bin/env python3
"""What `make test` needs besides the Python packages, checked up front and reported in one message.

- ``redis-server`` on PATH: tests/e2e/test_timeout_e2e.py starts its own, on a free port (no running
  Redis is needed or touched);
- Chromium at /usr/bin/chromium: the browser tests (Playwright drives Debian's Chromium);
- MariaDB/MySQL answering, only when DATABASE_URL names one (the tests create ``test_<name>``).

``--no-slow`` (``make test PYTEST_ARGS='-m "not slow"'``) checks the database only: the fast tests
need neither Redis nor Chromium. Standard library only, so it runs before anything is installed.
"""

import os
import shutil
import socket
import sys
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
FAST_ONLY = """make test PYTEST_ARGS='-m "not slow"'"""


def missing_prerequisites(*, slow: bool, database_url: str) -> list[str]:
    missing = []
    if slow and not shutil.which("redis-server"):
        missing.append("redis-server on PATH (Debian: apt-get install redis-server); the suite starts its own")
    if slow and not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (Debian: apt-get install chromium), for the browser tests")
    if database_url.startswith("mysql"):
        url = urlsplit(database_url)
        host, port = url.hostname or "127.0.0.1", url.port or 3306
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            missing.append(f"MariaDB/MySQL at {host}:{port} (DATABASE_URL) does not answer: {exc}")
    return missing


def main() -> int:
    slow = "--no-slow" not in sys.argv[1:]
    database_url = os.environ.get("DATABASE_URL", "")
    database = "MariaDB/MySQL (DATABASE_URL)" if database_url.startswith("mysql") else "SQLite (the default)"
    missing = missing_prerequisites(slow=slow, database_url=database_url)
    if missing:
        lines = "\n".join(f"  - {item}" for item in missing)
        hint = f"\nWithout Redis and Chromium, the fast tests still run: {FAST_ONLY}" if slow else ""
        print(f"make test cannot run; it needs:\n{lines}{hint}", file=sys.stderr)
        return 1
    extras = "redis-server, Chromium, " if slow else ""
    duration = "about 10 minutes on 2 cores" if slow else "less without the slow tests"
    print(f"make test: prerequisites found ({extras}{database}); the suite takes {duration}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
