"""A misconfiguration is one line naming the variable and a non-zero exit, for every entry point."""

import os
import subprocess
import sys

import pytest

from tests.support import REPO, free_port

MISCONFIGURATIONS = {
    "short secret key, DEBUG off": ({"DJANGO_SECRET_KEY": "too-short", "DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
    "malformed DATABASE_URL": ({"DATABASE_URL": "mysql://root@127.0.0.1:notaport/mall"}, "DATABASE_URL"),
    "DATABASE_URL without a scheme": ({"DATABASE_URL": "db.sqlite3"}, "DATABASE_URL"),
    "unknown database engine": ({"DATABASE_URL": "postgres://mall@127.0.0.1/mall"}, "DATABASE_URL"),
    "unknown traces exporter": ({"OTEL_TRACES_EXPORTER": "jaegr"}, "OTEL_TRACES_EXPORTER"),
    "unknown sampler": ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
    "sampler ratio out of range": (
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
        "OTEL_TRACES_SAMPLER_ARG",
    ),
    "pay timeout with a unit": ({"ORDER_PAY_TIMEOUT": "30s"}, "ORDER_PAY_TIMEOUT"),
    "pay timeout of zero": ({"ORDER_PAY_TIMEOUT": "0"}, "ORDER_PAY_TIMEOUT"),
}

ENTRY_POINTS = {
    "manage.py": [sys.executable, "manage.py", "check"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "mall.wsgi:application", "--bind", "127.0.0.1:{port}"],
    "qcluster": [sys.executable, "manage.py", "qcluster"],
}


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DJANGO_", "DATABASE_", "ORDER_"))}
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("case", MISCONFIGURATIONS)
def test_a_misconfiguration_is_one_line_naming_the_variable_and_a_failure(case, entry_point):
    overrides, variable = MISCONFIGURATIONS[case]
    args = [arg.format(port=free_port()) for arg in ENTRY_POINTS[entry_point]]
    result = subprocess.run(args, cwd=REPO, env=clean_env(**overrides), capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("mall: configuration error: "), output
    assert variable in output
    assert "Traceback" not in output and "KeyError" not in output


def test_a_good_configuration_starts():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=clean_env(
            ORDER_PAY_TIMEOUT="30", OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.5"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
