"""Check the upgrade of a database migrated and filled by an older commit: every pending order closes exactly once.

    git worktree add /work/wt/old-8b4bc82 8b4bc82 && ln -s "$PWD/.venv" /work/wt/old-8b4bc82/.venv
    .venv/bin/python scripts/check_upgrade.py --old /work/wt/old-8b4bc82 \\
        --database mysql://root@127.0.0.1:3306/mall_lifecycle_rest_old

Not a CI test: it needs the old commit's worktree. Steps, each a ``manage.py shell`` of one tree:
1. old tree: drop and create the database, ``migrate``, place orders through ITS checkout (with a small
   ORDER_PAY_TIMEOUT; the checkout leaves its deadline bucket schedules, ``orders.timeouts.close_due_orders``),
   pay two, move four to deadlines of their own with only a per-order schedule (``orders.tasks.close_unpaid_order``,
   as the versions before the buckets stored them), and queue ORM-broker tasks of both old paths;
2. this tree: ``migrate``; every schedule and queued task names a function that imports;
3. once every deadline has passed: run each schedule's and each queued task's function as the worker would, then
   the safety-net sweep, twice over; every unpaid order is closed with exactly one ``closed`` event and one return
   per line, the paid ones are untouched, and each goods' stock is back to its start less what was paid.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

NEW_TREE = Path(__file__).resolve().parent.parent
PAY_TIMEOUT = 5  # seconds: the checkout's deadlines pass while this tree migrates

OLD_PHASE = """
import json
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task, schedule

from carts.services import add_to_cart
from inventory.services import create_goods_with_stock
from orders.models import Order
from orders.services import create_order, pay_order
from orders.timeouts import bucket_end, schedule_name

goods = [create_goods_with_stock(name=f"Upgrade {i}", price=Decimal("2.50"), stock=100) for i in range(3)]
users = [get_user_model().objects.create_user(username=f"upgrade{i}", password="x") for i in range(4)]
address = {"address": "1 Main Street", "signer_name": "Ada", "signer_mobile": "+15550100"}
orders = []
for n in range(12):
    user = users[n % len(users)]
    add_to_cart(user=user, goods_id=goods[n % 3].pk, quantity=1 + n % 2)
    add_to_cart(user=user, goods_id=goods[(n + 1) % 3].pk, quantity=1)
    orders.append(create_order(user=user, **address).order)
for order in orders[-2:]:
    pay_order(order=order)
# Orders of the per-order design: a deadline bucket of their own with no bucket schedule, only their own schedule.
buckets_before = set(Schedule.objects.filter(name__startswith="close-due-orders-").values_list("name", flat=True))
for k, order in enumerate(orders[:4], start=1):
    deadline = order.expires_at + timedelta(seconds=10 * k)
    Order.objects.filter(pk=order.pk).update(expires_at=deadline)
    assert schedule_name(bucket_end(deadline)) not in buckets_before
    schedule("orders.tasks.close_unpaid_order", order.pk, "", schedule_type=Schedule.ONCE, next_run=deadline)
# Tasks already queued in the ORM broker when the worker stopped for the upgrade, of both old paths.
async_task("orders.tasks.close_unpaid_order", orders[4].pk, "")
async_task("orders.timeouts.close_due_orders")
print(json.dumps({
    "orders": len(orders),
    "paid": [o.pk for o in orders[-2:]],
    "schedules": sorted(Schedule.objects.exclude(name="close-overdue-orders").values_list("func", flat=True)),
    "queued": OrmQ.objects.count(),
}))
"""

NEW_PHASE = """
import ast
import json
import time
from collections import Counter

from django.db.models import Max, Sum
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from inventory.models import Stock, StockMove
from orders.expiry import sweep_overdue_orders
from orders.invariants import check_invariants
from orders.models import Order, OrderEvent, OrderLine

report = {}
schedules = list(Schedule.objects.all())
queued = [SignedPackage.loads(q.payload) for q in OrmQ.objects.all()]
report["schedules after migrate"] = sorted(f"{s.func}{s.args or '()'}" for s in schedules)
report["queued after migrate"] = sorted(f"{t['func']}{tuple(t['args'])}" for t in queued)
missing = []
for func in [s.func for s in schedules] + [t["func"] for t in queued]:
    try:
        import_string(func)
    except ImportError:
        missing.append(func)
report["task paths that do not import"] = missing

last_deadline = Order.objects.aggregate(last=Max("expires_at"))["last"]
while timezone.now() <= last_deadline:  # the real clock: the deadlines were set by the old checkout
    time.sleep(0.2)
outcomes = Counter()
for _ in range(2):  # a second pass finds nothing left to close
    for s in schedules:
        if s.name == "close-overdue-orders":
            continue
        result = import_string(s.func)(*ast.literal_eval(s.args or "()"), **ast.literal_eval(s.kwargs or "{}"))
        outcomes[f"{s.func} -> {result}"] += 1
    for task in queued:
        result = import_string(task["func"])(*task["args"], **task["kwargs"])
        outcomes[f"queued {task['func']} -> {result}"] += 1
    outcomes[f"sweep -> {sweep_overdue_orders()}"] += 1
report["close pass outcomes"] = dict(sorted(outcomes.items()))

problems = []
for order in Order.objects.all():
    closed_events = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.CLOSED).count()
    returned = StockMove.objects.filter(order_no=order.order_no, kind="return")
    returns = Counter(returned.values_list("goods_id", flat=True))
    lines = dict(OrderLine.objects.filter(order=order).values_list("goods_id", "nums"))
    if order.status == Order.Status.PAID:
        if closed_events or returns:
            problems.append(f"paid order {order.pk} closed or returned")
    elif order.status != Order.Status.CLOSED or closed_events != 1 or returns != Counter(set(lines)):
        problems.append(f"order {order.pk}: {order.status}, {closed_events} closed events, returns {dict(returns)}")
    for goods_id, nums in lines.items():
        units = returned.filter(goods_id=goods_id).aggregate(n=Sum("quantity"))["n"]
        if order.status == Order.Status.CLOSED and units != nums:
            problems.append(f"order {order.pk}: goods {goods_id} returned other than {nums}")
sold = Counter()
for goods_id, nums in OrderLine.objects.filter(order__status=Order.Status.PAID).values_list("goods_id", "nums"):
    sold[goods_id] += nums
for stock in Stock.objects.all():
    if stock.quantity != 100 - sold[stock.goods_id]:
        problems.append(f"goods {stock.goods_id}: stock {stock.quantity}, expected {100 - sold[stock.goods_id]}")
report["orders by status"] = dict(Counter(Order.objects.values_list("status", flat=True)))
closes_per_order = Counter(OrderEvent.objects.filter(kind=OrderEvent.Kind.CLOSED).values_list("order_id", flat=True))
report["orders by number of closed events"] = dict(Counter(closes_per_order.values()))
report["stock"] = dict(Stock.objects.values_list("goods_id", "quantity"))
report["invariants"] = check_invariants()
report["problems"] = problems
print(json.dumps(report, indent=1, default=str))
"""


def shell(tree: Path, database: str, code: str) -> str:
    """Run ``code`` in ``manage.py shell`` of ``tree`` on ``database``; its stdout."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database,
        "ORDER_PAY_TIMEOUT": str(PAY_TIMEOUT),
        "OTEL_SDK_DISABLED": "true",
        "DJANGO_DEBUG": "0",
    }
    done = subprocess.run(
        [str(tree / ".venv/bin/python"), "manage.py", "shell", "-c", code],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{tree}: exit {done.returncode}\n{done.stderr[-4000:]}")
    return done.stdout


def manage(tree: Path, database: str, *args: str) -> None:
    """Run ``manage.py args`` in ``tree`` on ``database``, failing loudly."""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database, "OTEL_SDK_DISABLED": "true"}
    done = subprocess.run([str(tree / ".venv/bin/python"), "manage.py", *args], cwd=tree, env=env, capture_output=True)
    if done.returncode:
        sys.exit(f"{tree}: manage.py {' '.join(args)}: exit {done.returncode}\n{done.stderr.decode()[-4000:]}")


def recreate(database: str) -> None:
    """Drop and create the MariaDB database ``database`` names (only names containing "old")."""
    import MySQLdb

    url = urlparse(database)
    name = url.path.lstrip("/")
    if "old" not in name:
        sys.exit(f"refusing to drop {name!r}: the name must contain 'old'")
    connection = MySQLdb.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root")
    cursor = connection.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="worktree of the old commit, with .venv")
    parser.add_argument("--database", default="mysql://root@127.0.0.1:3306/mall_lifecycle_rest_old")
    args = parser.parse_args()
    recreate(args.database)
    started = time.monotonic()
    manage(args.old, args.database, "migrate", "--no-input")
    print("old tree:", subprocess.check_output(["git", "-C", args.old, "log", "--oneline", "-1"], text=True).strip())
    print("old tree placed:", shell(args.old, args.database, OLD_PHASE).strip().splitlines()[-1])
    manage(NEW_TREE, args.database, "migrate", "--no-input")
    print("this tree:", subprocess.check_output(["git", "-C", NEW_TREE, "log", "--oneline", "-1"], text=True).strip())
    output = shell(NEW_TREE, args.database, NEW_PHASE)
    print(output.strip())
    report = json.loads(output[output.index("{") :])
    failed = report["problems"] or report["invariants"] or report["task paths that do not import"]
    print(f"{'FAILED' if failed else 'OK'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
