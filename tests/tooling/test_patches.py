"""The patches of other packages (mall/patches.py): each target exists, is applied, and fails loudly when gone."""

import subprocess
import sys

import pytest
from django.db import connection, models
from django.db.backends.sqlite3.base import DatabaseOperations
from django_q.models import Schedule
from opentelemetry.instrumentation.dbapi import CursorTracer

from mall import patches
from mall.patches import PatchTargetMissing
from tests.support import REPO, shop_env


def test_every_patched_attribute_exists_in_the_installed_packages():
    assert patches.missing_patch_targets() == []
    assert len(patches.PATCH_TARGETS) == 3


def test_the_patches_are_applied_at_start_up():
    assert Schedule._meta.pk.get_internal_type() == "BigAutoField"
    # The test session's sampler is parent-based (the default): the cursor tracer is wrapped.
    assert getattr(CursorTracer.traced_execution, "_mall_patch", False)
    if connection.vendor == "sqlite":
        assert getattr(DatabaseOperations._quote_params_for_last_executed_query, "_mall_patch", False)


@pytest.mark.django_db
def test_a_schedule_beyond_32_bit_ids_is_found_and_saved():
    big_id = 2**31 + 7
    Schedule.objects.create(id=big_id, name="beyond-32-bits", func="math.floor", args="1", repeats=-1)

    schedule = Schedule.objects.get(pk=big_id)
    schedule.repeats = 3
    schedule.save()

    assert Schedule.objects.filter(pk=big_id).values_list("repeats", flat=True).get() == 3


REMOVED_TARGETS = {
    "django-q2 schedule id": (
        patches.use_64_bit_schedule_ids,
        lambda monkeypatch: monkeypatch.setattr(Schedule._meta, "pk", None),
        "django_q.models.Schedule._meta.pk.get_internal_type",
    ),
    "Django SQLite debug quoting": (
        patches.untrace_sqlite_debug_quoting,
        lambda monkeypatch: monkeypatch.delattr(DatabaseOperations, "_quote_params_for_last_executed_query"),
        "django.db.backends.sqlite3.base.DatabaseOperations._quote_params_for_last_executed_query",
    ),
    "DB-API cursor tracer": (
        patches.skip_statements_outside_recorded_spans,
        lambda monkeypatch: monkeypatch.delattr(CursorTracer, "traced_execution"),
        "opentelemetry.instrumentation.dbapi.CursorTracer.traced_execution",
    ),
}


@pytest.mark.parametrize("case", REMOVED_TARGETS)
def test_a_patch_whose_target_is_gone_fails_naming_it(monkeypatch, case):
    patch, remove_target, target = REMOVED_TARGETS[case]
    remove_target(monkeypatch)

    with pytest.raises(PatchTargetMissing, match=target.replace(".", r"\.")):
        patch()
    assert patches.missing_patch_targets() == [target]
    with pytest.raises(PatchTargetMissing, match=target.replace(".", r"\.")):
        patches.apply_patches()


def test_a_schedule_primary_key_that_is_no_longer_an_auto_field_is_refused(monkeypatch):
    monkeypatch.setattr(Schedule._meta, "pk", models.UUIDField(primary_key=True))

    with pytest.raises(PatchTargetMissing, match="no longer an AutoField"):
        patches.use_64_bit_schedule_ids()


@pytest.mark.slow
def test_a_process_whose_patch_target_is_gone_does_not_start():
    # An upgraded django-q2 without the attribute, simulated before Django sets the apps up.
    script = (
        "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mall.settings'); "
        "from opentelemetry.instrumentation import dbapi; del dbapi.CursorTracer.traced_execution; django.setup()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=shop_env(), capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "PatchTargetMissing" in result.stderr
    assert "opentelemetry.instrumentation.dbapi.CursorTracer.traced_execution" in result.stderr
