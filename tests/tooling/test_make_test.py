"""``make test``: its prerequisites are checked up front in one message; the tools install once."""

import os
import subprocess
import sys

from tests.support import REPO, free_port

CHECK = [sys.executable, "scripts/check_test_prereqs.py"]


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        CHECK + list(args), cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )


def test_every_missing_prerequisite_is_named_in_one_message(tmp_path):
    closed_port = free_port()  # nothing listens there

    result = check(PATH=str(tmp_path), DATABASE_URL=f"mysql://root@127.0.0.1:{closed_port}/shop")

    assert result.returncode == 1 and result.stdout == ""
    message = result.stderr
    assert message.startswith("make test cannot run; it needs:")
    assert "redis-server on PATH" in message
    assert f"MariaDB/MySQL at 127.0.0.1:{closed_port} (DATABASE_URL) does not answer" in message
    assert """make test PYTEST_ARGS='-m "not slow"'""" in message


def test_the_fast_tests_need_only_the_database(tmp_path):
    result = check("--no-slow", PATH=str(tmp_path), DATABASE_URL="")
    assert result.returncode == 0, result.stderr
    assert "SQLite" in result.stdout and "redis-server" not in result.stdout


def test_the_prerequisites_of_this_machine_are_stated():
    result = check(DATABASE_URL="")
    assert result.returncode == 0, result.stderr
    assert "redis-server, Chromium, SQLite" in result.stdout and "minutes" in result.stdout


def test_the_test_tools_are_installed_only_when_a_requirements_file_changed(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)

    def planned() -> str:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the SQLite flavour's stamp
        result = subprocess.run(
            ["make", "-n", "test", f"VENV={venv}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "pip install" in planned()  # first run: no stamp yet
    (venv / ".mall-dev-deps.stamp").touch()
    second = planned()
    assert "pip install" not in second
    assert "scripts/check_test_prereqs.py" in second and "pytest" in second
