"""The curated mutants of scripts/mutants.py still apply to the code (run them with ``make mutants``).

A refactor that changes a mutant's original text makes that mutant meaningless; this fails in CI
so that the mutant is updated with the code instead of silently rotting.
"""

import importlib.util
import sys

from tests.support import REPO


def load_mutants():
    spec = importlib.util.spec_from_file_location("mutants", REPO / "scripts" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_original_text_is_found_exactly_once_and_its_tests_exist():
    mutants = load_mutants()

    assert mutants.rot() == []
    assert len(mutants.MUTANTS) >= 14


def test_a_mutant_whose_text_is_gone_is_reported():
    mutants = load_mutants()
    gone = mutants.mutant("gone", "text no longer in the code", ("orders/services.py", "no such text", "x"), tests=[])

    assert mutants.rot([gone]) == ["gone: original text found 0 times in orders/services.py (expected once)"]
