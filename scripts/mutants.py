#!/usr/bin/env python3
"""Curated mutation check: apply plausible bugs one at a time and see the tests that should catch them fail.

Each mutant replaces one exact piece of source text (or a few) with a bug, in a temporary copy of the
tree (the working tree is never touched), runs the tests named for it on the database(s) that can
catch it, and counts it killed if they fail. A mutant whose original text is no longer in the tree is
an ERROR, never silently skipped: update the mutant with the code. See README "## Mutation testing".

    python scripts/mutants.py                 # all mutants (make mutants)
    python scripts/mutants.py --list          # names, databases, tests
    python scripts/mutants.py cart-line-lock  # some mutants, by name
    python scripts/mutants.py --check         # only: is every mutant's original text still found once?
    python scripts/mutants.py --each-test     # each named test alone: which of them catch the mutant

MariaDB runs use MUTANTS_MARIADB_URL, else DATABASE_URL when it is a mysql:// URL (the tests create and
drop test_<name>). Exit status 0 only if every mutant was killed and nothing errored.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SQLITE, MARIADB = "sqlite", "mariadb"
RUN_TIMEOUT = 900  # seconds per pytest run; a mutant that hangs the tests counts as killed (CI would time out)


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the repository root
    original: str  # exact text, found exactly once in the file
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what a reviewer would call it
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids that must fail
    databases: tuple[str, ...]  # where the bug is visible (SQLite takes no row locks)


def mutant(name, bug, *edits, tests, databases=(SQLITE,)) -> Mutant:
    return Mutant(name, bug, tuple(Edit(*edit) for edit in edits), tuple(tests), tuple(databases))


MUTANTS = [
    mutant(
        "cart-line-lock",
        "checkout reads the cart lines without FOR UPDATE",
        ("carts/locks.py", "CartItem.objects.select_for_update().filter(user=user, checked=True)",
         "CartItem.objects.filter(user=user, checked=True)"),
        tests=["tests/concurrency/test_checkout_races.py::test_a_double_submitted_checkout_without_idempotency_key_places_one_order"],
        databases=(MARIADB,),
    ),
    mutant(
        "stock-row-lock",
        "stock rows read without FOR UPDATE before the shortage check",
        ("inventory/locks.py", "rows = Stock.objects.select_for_update().filter(goods_id__in=list(goods_ids))",
         "rows = Stock.objects.filter(goods_id__in=list(goods_ids))"),
        tests=["tests/concurrency/test_checkout_races.py::test_the_hot_item_race_never_reaches_the_stock_constraint",
               "tests/concurrency/test_concurrency.py::test_buyers_of_a_hot_item_get_exactly_its_stock"],
        databases=(MARIADB,),
    ),
    mutant(
        "sweep-batch-lock",
        "the timeout sweep reads its batch without FOR UPDATE SKIP LOCKED",
        ("orders/expiry.py", """overdue = overdue_orders(now=now, exclude=exclude).select_for_update(
            skip_locked=connection.features.has_select_for_update_skip_locked
        )""", "overdue = overdue_orders(now=now, exclude=exclude)"),
        tests=["tests/concurrency/test_sweep_locks.py",
               "tests/domain/test_timeout.py::test_the_batched_sweep_racing_pay_and_cancel_has_exactly_one_winner_per_order",
               "tests/domain/test_timeout.py::test_the_safety_net_racing_cancels_and_per_order_closes_has_exactly_one_winner_per_order"],
        databases=(MARIADB,),
    ),
    mutant(
        "pay-price-float",
        "pay_price summed in float",
        ("orders/checkout.py", 'pay_price = sum((line.goods_price * line.nums for line in lines), Decimal("0.00"))',
         "pay_price = sum(float(line.goods_price) * line.nums for line in lines)"),
        tests=["tests/domain/test_money.py",
               "tests/domain/test_checkout.py::test_checkout_trace_has_one_span_per_step_under_create_order"],
    ),
    mutant(
        "close-before-deadline",
        "the per-order close ignores the deadline (due_by)",
        ("orders/services.py", """    if due_by is not None:
        pending = pending.filter(expires_at__lte=due_by)
""", ""),
        tests=["tests/domain/test_order_rules.py::test_the_close_refuses_an_order_a_moment_before_its_deadline_and_takes_it_at_it",
               "tests/domain/test_timeout.py::test_timeout_leaves_an_order_alone_unless_it_is_unpaid_past_its_deadline"],
    ),
    mutant(
        "fingerprint-ignored",
        "a reused Idempotency-Key with another body replays the first order",
        ("orders/checkout.py", "if order is not None and order.request_fingerprint != fingerprint:",
         "if order is not None and order.request_fingerprint is None:"),
        tests=["tests/domain/test_order_rules.py",
               "tests/domain/test_checkout.py::test_an_idempotency_key_reused_for_another_body_is_refused"],
    ),
    mutant(
        "retry-any-integrity-error",
        "create_order retries every IntegrityError (hides a stock CHECK violation as a 409)",
        ("mall/db.py", "if violated_constraint(exc) not in unique_races or attempt == attempts:",
         "if attempt == attempts:"),
        tests=["tests/domain/test_checkout_constraints.py"],
        databases=(SQLITE, MARIADB),
    ),
    mutant(
        "return-stock-twice",
        "ending an order does not require it to be pending (conditional update dropped)",
        ("orders/services.py", "pending = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING)",
         "pending = Order.objects.filter(pk=order.pk)"),
        tests=["tests/domain/test_timeout.py::test_running_the_timeout_twice_returns_the_stock_once",
               "tests/domain/test_orders.py::test_a_finished_order_cannot_transition_again"],
    ),
    mutant(
        "pay-after-deadline",
        "pay ignores expires_at",
        ("orders/services.py", "Order.objects.filter(pk=order.pk, status=Order.Status.PENDING, expires_at__gt=now)",
         "Order.objects.filter(pk=order.pk, status=Order.Status.PENDING)"),
        tests=["tests/domain/test_orders.py::test_an_order_past_its_deadline_cannot_be_paid",
               "tests/concurrency/test_concurrency.py::test_pay_cancel_and_timeout_racing_on_100_orders_end_each_in_exactly_one_state"],
    ),
    mutant(
        "cancel-keeps-stock",
        "a cancelled order's stock is not returned",
        ("orders/services.py", "units = return_stock(order_no=order.order_no, quantities=quantities)",
         "units = 0 if status == Order.Status.CANCELLED else "
         "return_stock(order_no=order.order_no, quantities=quantities)"),
        tests=["tests/domain/test_orders.py::test_cancelling_returns_the_stock_through_the_ledger"],
    ),
    mutant(
        "ledger-unique-dropped",
        "the ledger's one-move-per-(order, goods, kind) unique constraint is dropped (model and migration)",
        ("inventory/models.py",
         'models.UniqueConstraint(fields=["order_no", "goods", "kind"], name="stockmove_once_per_order"),', ""),
        ("inventory/migrations/0001_initial.py",
         "'constraints': [models.UniqueConstraint(fields=('order_no', 'goods', 'kind'), "
         "name='stockmove_once_per_order')],",
         "'constraints': [],"),
        tests=["tests/domain/test_invariants.py::test_the_database_refuses_a_second_return"],
    ),
    mutant(
        "query-inv-partial",
        "the stock deduction refuses only when every line is short (not all or nothing)",
        ("inventory/services.py", "    if short:\n        raise InsufficientStock(goods=short)",
         "    if short == sorted(quantities):\n        raise InsufficientStock(goods=short)"),
        tests=["tests/domain/test_checkout.py::test_insufficient_stock_rolls_everything_back",
               "tests/domain/test_properties.py"],
    ),
    mutant(
        "delete-whole-cart",
        "the checkout deletes all the user's cart lines, unchecked ones too",
        ("carts/services.py", "deleted, _ = CartItem.objects.filter(pk__in=item_ids).delete()",
         "deleted, _ = CartItem.objects.filter(user__cart_items__pk__in=item_ids).delete()"),
        tests=["tests/domain/test_checkout.py::test_checkout_turns_checked_cart_lines_into_a_pending_order",
               "tests/domain/test_properties.py"],
    ),
    mutant(
        "others-orders-visible",
        "the orders API is not limited to the caller's orders",
        ("orders/selectors.py", "return Order.objects.filter(user=user).prefetch_related",
         "return Order.objects.prefetch_related"),
        tests=["tests/api/test_security.py::test_another_users_order_is_not_found",
               "tests/domain/test_orders.py::test_orders_list_and_detail_show_only_the_callers_orders"],
    ),
    mutant(
        "idempotency-key-global",
        "an Idempotency-Key is looked up across users (one user's key returns another's order)",
        ("orders/checkout.py", "Order.objects.filter(user=user, idempotency_key=idempotency_key).first()",
         "Order.objects.filter(idempotency_key=idempotency_key).first()"),
        tests=["tests/domain/test_checkout.py::test_idempotency_keys_are_per_user"],
    ),
]  # fmt: skip


def rot(mutants=MUTANTS, root: Path = REPO) -> list[str]:
    """Problems that make a mutant meaningless: its original text missing (or ambiguous), a test file gone."""
    problems = []
    for m in mutants:
        for edit in m.edits:
            path = root / edit.path
            found = path.read_text().count(edit.original) if path.exists() else 0
            if found != 1:
                problems.append(f"{m.name}: original text found {found} times in {edit.path} (expected once)")
        for test in m.tests:
            if not (root / test.split("::")[0]).exists():
                problems.append(f"{m.name}: test file {test.split('::')[0]} not found")
        if unknown := set(m.databases) - {SQLITE, MARIADB}:
            problems.append(f"{m.name}: unknown database(s) {sorted(unknown)}")
    names = [m.name for m in mutants]
    problems += [f"{name}: mutant name used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    return problems


def copy_tree(destination: Path) -> None:
    """The working tree as it is (tracked and untracked, not ignored files), without touching it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def database_urls(scratch: Path) -> dict[str, str | None]:
    mariadb = os.environ.get("MUTANTS_MARIADB_URL") or os.environ.get("DATABASE_URL", "")
    return {SQLITE: f"sqlite:///{scratch / 'db.sqlite3'}", MARIADB: mariadb if mariadb.startswith("mysql") else None}


def run_tests(tree: Path, tests: tuple[str, ...], database_url: str) -> tuple[int | None, str]:
    """pytest's exit status (None on timeout) and the tail of its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(DATABASE_URL=database_url, PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", *tests]  # the Python running this script (make: .venv)
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {RUN_TIMEOUT}s"
    return done.returncode, (done.stdout + done.stderr)[-1500:]


def apply(tree: Path, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """Apply a mutant's edits in ``tree``; returns the original text of every file changed, to restore."""
    originals: dict[Path, str] = {}
    for edit in edits:
        path = tree / edit.path
        text = path.read_text()
        originals.setdefault(path, text)
        path.write_text(text.replace(edit.original, edit.replacement, 1))
    return originals


def judge(tree: Path, m: Mutant, tests: tuple[str, ...], db: str, url: str) -> str:
    """Run ``tests`` with the mutant applied (then restored); print and return the verdict."""
    originals = apply(tree, m.edits)
    began = time.monotonic()
    try:
        status, output = run_tests(tree, tests, url)
    finally:
        for path, text in originals.items():
            path.write_text(text)
    # 1: tests failed. None: timed out. 0: survived. Others (2 interrupted, 4 usage: a test id
    # not found, 5 no tests collected) mean the mutant's test list is broken: an error.
    verdict = {1: "KILLED", None: "KILLED", 0: "SURVIVED"}.get(status, "ERROR")
    caught_by = [line.split(" - ")[0] for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    print(f"{verdict:9}{m.name} [{db}] {time.monotonic() - began:.0f}s  {m.bug}", flush=True)
    if verdict == "KILLED":
        print(f"         caught by: {caught_by[0] if caught_by else output.strip().splitlines()[-1]}")
    else:
        print(f"         pytest exit {status}; tests: {' '.join(tests)}\n{output}")
    return verdict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that every mutant still applies")
    parser.add_argument("--database", choices=[SQLITE, MARIADB], help="run only on this database")
    parser.add_argument(
        "--each-test", action="store_true", help="run each named test alone (which of them catch the mutant?)"
    )
    args = parser.parse_args(argv)

    if args.list:
        for m in MUTANTS:
            print(f"{m.name:28} {'+'.join(m.databases):15} {m.bug}\n{'':44} tests: {' '.join(m.tests)}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        print(f"ERROR: unknown mutant(s) {', '.join(sorted(unknown))}; see --list", file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    problems = rot(chosen)
    for problem in problems:
        print(f"ERROR  {problem}")
    if args.check:
        print(f"{len(chosen) - len({p.split(':')[0] for p in problems})}/{len(chosen)} mutants apply")
        return 1 if problems else 0

    started = time.monotonic()
    broken = {p.split(":")[0] for p in problems}
    results: dict[str, str] = {name: "ERROR" for name in broken}
    with tempfile.TemporaryDirectory(prefix="mall-mutants-") as scratch:
        tree = Path(scratch) / "tree"
        copy_tree(tree)
        urls = database_urls(Path(scratch))
        runs = [(m, db) for m in chosen if m.name not in broken for db in m.databases if db == (args.database or db)]

        # The named tests must pass on the unmutated tree, or "killed" would mean nothing.
        for db in sorted({db for _, db in runs}):
            if urls[db] is None:
                continue
            tests = tuple(sorted({t for m, d in runs if d == db for t in m.tests}))
            print(f"baseline on {db}: {len(tests)} test targets ...", flush=True)
            status, output = run_tests(tree, tests, urls[db])
            if status != 0:
                print(f"ERROR  baseline on {db}: the named tests fail WITHOUT any mutant (exit {status}):\n{output}")
                return 1

        for m, db in runs:
            if urls[db] is None:
                print(f"ERROR  {m.name} [{db}]: no MariaDB to run on; set MUTANTS_MARIADB_URL (or DATABASE_URL) "
                      "to a mysql:// URL")  # fmt: skip
                results[m.name] = "ERROR"
                continue
            for tests in [(test,) for test in m.tests] if args.each_test else [m.tests]:
                verdict = judge(tree, m, tests, db, urls[db])
                # Killed only if killed on every database; with --each-test, by any one of its tests.
                if results.get(m.name) in (None, "SURVIVED" if args.each_test else "KILLED"):
                    results[m.name] = verdict

    killed = sum(verdict == "KILLED" for verdict in results.values())
    errors = sum(verdict == "ERROR" for verdict in results.values())
    print(f"\nscore: {killed}/{len(results)} mutants killed ({100 * killed // max(len(results), 1)} %), "
          f"{errors} errors, {time.monotonic() - started:.0f}s")  # fmt: skip
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
