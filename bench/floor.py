"""The floor: the shop's own checkout statements replayed through the raw DB driver, no Django.

The statements are the ones the shop ran for one captured cycle (``bench.statements.capture_checkout_cycle``),
byte for byte, grouped into the same transactions, on connections set up like Django's (MariaDB: READ
COMMITTED, utf8mb4, the same sql_mode and lock wait timeout; SQLite: WAL, BEGIN IMMEDIATE). Only their
parameters are rebuilt per cycle, by one small function per statement; ``check_replay`` proves that these
functions rebuild exactly the captured parameters, so a change of the shop's SQL stops the floor instead
of silently measuring something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

from bench.statements import CHECKOUT_BODY, CapturedCycle
from bench.threads import run_together
from mall.db import LOCK_CONFLICT_ERROR_CODES
from orders.models import new_order_no

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+[`\"]?(\w+)", re.IGNORECASE)


@dataclass
class CycleState:
    """What one cycle's parameters are built from; filled in from the rows the statements return."""

    token: str
    user_id: int
    goods_id: int
    order_no: str
    now: str
    expires: str
    fingerprint: str
    trace_id: str = ""
    span_id: str = ""
    traceparent: str = ""
    cart_ids: list[int] = field(default_factory=list)
    lines: list[tuple[int, int]] = field(default_factory=list)  # (goods id, nums)
    goods: dict[int, tuple[str, Decimal]] = field(default_factory=dict)  # goods id → (name, price)
    stock: dict[int, int] = field(default_factory=dict)  # goods id → quantity read under the lock
    order_id: int = 0


def statement_name(sql: str) -> str:
    """Which of the checkout's statements ``sql`` is (its verb, table and shape)."""
    verb = sql.split(None, 1)[0].upper()
    if verb == "BEGIN":
        return "begin"
    match = _TABLE.search(sql)
    table = match.group(1) if match else "?"
    where = sql.split("WHERE", 1)[-1]
    names = {
        ("SELECT", "authtoken_token"): "token",
        ("INSERT", "carts_cartitem"): "cart_insert",
        ("DELETE", "carts_cartitem"): "cart_delete",
        ("SELECT", "goods_goods"): "goods_for_sale" if " IN (" in sql else "goods_by_id",
        # FOR UPDATE on MariaDB; SQLite has none (BEGIN IMMEDIATE locks the database instead)
        ("SELECT", "inventory_stock"): "stock_locked",
        ("UPDATE", "inventory_stock"): "stock_update",
        ("INSERT", "inventory_stockmove"): "stock_ledger",
        ("INSERT", "orders_order"): "order_insert",
        ("INSERT", "orders_orderline"): "order_lines_insert",
        ("INSERT", "orders_orderevent"): "order_event_insert",
        ("INSERT", "django_q_schedule"): "schedule_insert",
    }
    name = names.get((verb, table))
    if (verb, table) == ("SELECT", "carts_cartitem"):
        name = "cart_checked_locked" if "checked" in where else "cart_lines_locked"
    if name is None:
        raise UnknownStatement(sql)
    return name


class UnknownStatement(Exception):
    def __init__(self, sql: str):
        super().__init__(f"the checkout runs a statement bench/floor.py does not know; teach it: {sql[:200]}")


def _ids(s: CycleState) -> list[int]:
    return [goods_id for goods_id, _ in s.lines]


def _order_insert(s: CycleState) -> tuple:
    pay_price = sum((s.goods[goods_id][1] * nums for goods_id, nums in s.lines), Decimal("0.00"))
    body = CHECKOUT_BODY
    # fmt: off
    return (s.order_no, s.user_id, "pending", pay_price, body["address"], body["signer_name"], body["signer_mobile"],
            "", "", s.now, s.now, s.expires, None, None, s.trace_id, s.span_id, None, s.fingerprint)
    # fmt: on


def _schedule_insert(s: CycleState) -> tuple:
    args = repr((s.order_id, s.traceparent))  # django-q2 stores args as their repr
    # fmt: off
    return (None, "orders.tasks.close_unpaid_order", None, args, "{}", "O", None, -1, s.expires,
            None, None, None, None)
    # fmt: on


# One parameter builder per statement: the values the shop passes, in the order it passes them.
PARAMS = {
    "begin": lambda s: (),
    "token": lambda s: (s.token,),
    "goods_by_id": lambda s: (s.goods_id,),
    "cart_lines_locked": lambda s: (s.user_id,),
    "cart_insert": lambda s: (s.user_id, s.goods_id, 1, True, s.now, s.now),
    "cart_checked_locked": lambda s: (True, s.user_id),
    "goods_for_sale": lambda s: (True, *set(_ids(s))),
    "stock_locked": lambda s: tuple(_ids(s)),
    "stock_update": lambda s: (*[value for goods_id, nums in s.lines for value in (goods_id, -nums)], *_ids(s)),
    "stock_ledger": lambda s: tuple(
        value for goods_id, nums in s.lines for value in (goods_id, s.order_no, "sell", nums, s.now, None)
    ),
    "order_insert": lambda s: _order_insert(s),
    "order_lines_insert": lambda s: tuple(
        value for goods_id, nums in s.lines for value in (s.order_id, goods_id, *s.goods[goods_id], nums)
    ),
    "order_event_insert": lambda s: (s.order_id, "placed", s.now, "customer", None, s.trace_id),
    "cart_delete": lambda s: tuple(s.cart_ids),
    "schedule_insert": lambda s: _schedule_insert(s),
}


def _absorb(name: str, rows: list, state: CycleState) -> None:
    """Keep what the next statements need from a statement's rows (column positions checked by check_replay)."""
    if name == "cart_checked_locked":
        state.cart_ids = [row[0] for row in rows]
        state.lines = [(row[2], row[3]) for row in rows]
    elif name == "goods_for_sale":
        state.goods = {row[0]: (row[1], Decimal(row[2])) for row in rows}
    elif name == "stock_locked":
        state.stock = {row[0]: row[1] for row in rows}
    elif name == "order_insert":
        state.order_id = rows[0][0]


# The leading columns _absorb reads, per statement (quotes stripped).
_COLUMNS = {
    "cart_checked_locked": "SELECT carts_cartitem.id, carts_cartitem.user_id, carts_cartitem.goods_id, "
    "carts_cartitem.nums",
    "goods_for_sale": "SELECT goods_goods.id, goods_goods.name, goods_goods.price",
    "stock_locked": "SELECT inventory_stock.goods_id AS goods_id, inventory_stock.quantity AS quantity FROM",
    "order_insert": "RETURNING orders_order.id",
}


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?")


def _same(built, captured) -> bool:
    if isinstance(built, str) and isinstance(captured, str) and _TIMESTAMP.fullmatch(built):
        return bool(_TIMESTAMP.fullmatch(captured))  # taken at another moment: the format must match
    return built == captured and type(built) in (type(captured), *type(captured).__mro__)


def _unquoted(sql: str) -> str:
    return sql.replace("`", "").replace('"', "")


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    skip: int = 0  # leading True parameters the backend compiled into the SQL (SQLite: `WHERE "checked"`)


@dataclass(frozen=True)
class Group:
    """Statements run together: one transaction (``atomic``) or autocommit statements."""

    atomic: bool
    steps: tuple[Step, ...]


def replay_plan(cycle: CapturedCycle, skips: list[int]) -> list[Group]:
    """The captured statements as groups; a BEGIN (SQLite) opens the transaction that follows it."""
    groups: list[Group] = []
    current: tuple[int | None, list[Step]] | None = None
    pending_begin: list[Step] = []
    for statement, skip in zip(cycle.statements, skips, strict=True):
        step = Step(statement_name(statement.sql), statement.sql, skip)
        if step.name == "begin":
            pending_begin.append(step)
            continue
        if current is None or current[0] != statement.transaction:
            if current is not None:
                groups.append(Group(current[0] is not None, tuple(current[1])))
            current = (statement.transaction, [*pending_begin])
            pending_begin = []
        current[1].append(step)
    if current is not None:
        groups.append(Group(current[0] is not None, tuple(current[1])))
    return groups


def check_replay(cycle: CapturedCycle) -> list[Group]:
    """Prove the floor rebuilds the captured statements' parameters and reads the right columns; the plan."""
    state = CycleState(
        token=cycle.token,
        user_id=cycle.user_id,
        goods_id=cycle.goods_id,
        order_no=cycle.order_no,
        now=_timestamp(datetime.now(UTC)),
        expires=_timestamp(datetime.now(UTC)),
        fingerprint=cycle.fingerprint,
        trace_id=cycle.trace_id,
        span_id=cycle.span_id,
        traceparent=cycle.traceparent,
        cart_ids=[cycle.cart_item_id],
        lines=[(cycle.goods_id, 1)],
        goods={cycle.goods_id: (cycle.goods_name, cycle.goods_price)},
        stock={cycle.goods_id: cycle.stock_before},
        order_id=cycle.order_id,
    )
    skips = []
    for statement in cycle.statements:
        name = statement_name(statement.sql)
        built = PARAMS[name](state)
        captured = statement.params
        skip = len(built) - len(captured)
        if skip < 0 or any(value is not True for value in built[:skip]) or not all(map(_same, built[skip:], captured)):
            raise AssertionError(f"floor parameters of {name} differ from the shop's: {built!r} != {captured!r}")
        if name in _COLUMNS and _COLUMNS[name] not in _unquoted(statement.sql):
            raise AssertionError(f"floor reads columns of {name} the shop no longer selects: {statement.sql[:160]}")
        skips.append(skip)
    return replay_plan(cycle, skips)


def _timestamp(moment: datetime) -> str:
    return str(moment.replace(tzinfo=None))  # what Django passes for a DateTimeField (UTC, naive)


@dataclass(frozen=True)
class FloorClient:
    token: str
    user_id: int
    goods_id: int


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

    def close(self) -> None:
        self.connection.close()


# A traced shop stores the checkout span's ids and passes a traceparent: the floor writes values of that size.
_TRACE_ID, _SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
_TRACEPARENT = f"00-{_TRACE_ID}-{_SPAN_ID}-03"


def run_cycle(driver: Driver, plan: list[Group], client: FloorClient, fingerprint: str, pay_timeout: int) -> None:
    now = datetime.now(UTC)
    state = CycleState(
        trace_id=_TRACE_ID,
        span_id=_SPAN_ID,
        traceparent=_TRACEPARENT,
        token=client.token,
        user_id=client.user_id,
        goods_id=client.goods_id,
        order_no=new_order_no(user_id=client.user_id, now=now),
        now=_timestamp(now),
        expires=_timestamp(now + timedelta(seconds=pay_timeout)),
        fingerprint=fingerprint,
    )
    cursor = driver.connection.cursor()
    for group in plan:
        for attempt in range(3):
            if group.atomic:
                driver.begin()
            try:
                for step in group.steps:
                    cursor.execute(driver.sql(step.sql), PARAMS[step.name](state)[step.skip :])
                    if cursor.description is not None:
                        _absorb(step.name, cursor.fetchall(), state)
                if group.atomic:
                    driver.commit()
                break
            except Exception as exc:
                if group.atomic:
                    driver.rollback()
                if attempt == 2 or not (exc.args and exc.args[0] in LOCK_CONFLICT_ERROR_CODES):
                    raise


@dataclass(frozen=True)
class FloorResult:
    cycles: int
    seconds: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


def run_floor(
    *, database_url: str, options: dict, plan: list[Group], clients: list[FloorClient], cycles: int, fingerprint: str,
    pay_timeout: int,
) -> FloorResult:  # fmt: skip
    """``cycles`` checkout cycles replayed by one thread per client, each on its own connection."""
    errors: list[BaseException] = []

    def loop(client: FloorClient, ready, take) -> None:
        driver = Driver(database_url, options)  # connected in its thread (sqlite3 requires it)
        try:
            ready()
            while take():
                try:
                    run_cycle(driver, plan, client, fingerprint, pay_timeout)
                except Exception as exc:  # counted and reported; the floor must not hide failures
                    errors.append(exc)
        finally:
            driver.close()

    seconds = run_together(clients, cycles, loop)
    if errors:
        print(f"floor: {len(errors)} failed cycles, first: {errors[0]!r}")
    return FloorResult(cycles=cycles - len(errors), seconds=seconds, errors=len(errors))
