"""The floor: the shop's own checkout statements replayed through the raw DB driver, no Django.

The statements are the ones the shop ran for one captured cycle (``bench.statements.capture_checkout_cycle``),
byte for byte, grouped into the same transactions, on connections set up like Django's (MariaDB: READ
COMMITTED, utf8mb4, the same sql_mode and lock wait timeout; SQLite: WAL, BEGIN IMMEDIATE). Only their
parameters are rebuilt per cycle: an INSERT's by column name (the columns the floor does not set get their
model field's default), a query's by one small function each. ``check_replay`` proves that they rebuild
exactly the captured parameters, so a change of the shop's SQL stops the floor instead of silently measuring
something else, while a new model field with a default needs no change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from harness.threads import run_together
from orders.models import new_order_no
from perf.bench.checkout.driver import Driver
from perf.bench.checkout.statements import CHECKOUT_BODY, CapturedCycle

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+[`\"]?(\w+)", re.IGNORECASE)
_INSERT_COLUMNS = re.compile(r"^INSERT\s+INTO\s+\w+\s*\(([^)]*)\)", re.IGNORECASE)


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
    cart_ids: list[int] = field(default_factory=list)
    lines: list[tuple[int, int]] = field(default_factory=list)  # (goods id, nums)
    goods: dict[int, tuple[str, Decimal]] = field(default_factory=dict)  # goods id → (name, price)
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
    }
    name = names.get((verb, table))
    if (verb, table) == ("SELECT", "carts_cartitem"):
        name = "cart_checked_locked" if "checked" in where else "cart_lines_locked"
    if name is None:
        raise UnknownStatement(sql)
    return name


class UnknownStatement(Exception):
    def __init__(self, sql: str):
        super().__init__(
            f"the checkout runs a statement the floor (perf/bench/checkout/floor.py) does not know: {sql[:200]}"
        )


def _ids(s: CycleState) -> list[int]:
    return [goods_id for goods_id, _ in s.lines]


def _order_row(s: CycleState) -> dict:
    body = CHECKOUT_BODY
    return {
        "order_no": s.order_no,
        "user_id": s.user_id,
        "status": "pending",
        "pay_price": sum((s.goods[goods_id][1] * nums for goods_id, nums in s.lines), Decimal("0.00")),
        "address": body["address"],
        "signer_name": body["signer_name"],
        "signer_mobile": body["signer_mobile"],
        "created_at": s.now,
        "updated_at": s.now,
        "expires_at": s.expires,
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "request_fingerprint": s.fingerprint,
    }


# The rows each INSERT writes, by column. A column of the statement not named here is written with its model
# field's default (looked up once by check_replay), as the shop writes a field it does not set.
ROWS = {
    "cart_insert": lambda s: [
        {
            "user_id": s.user_id,
            "goods_id": s.goods_id,
            "nums": 1,
            "checked": True,
            "created_at": s.now,
            "updated_at": s.now,
        }
    ],
    "stock_ledger": lambda s: [
        {"goods_id": goods_id, "order_no": s.order_no, "kind": "sell", "quantity": nums, "created_at": s.now}
        for goods_id, nums in s.lines
    ],
    "order_insert": lambda s: [_order_row(s)],
    "order_lines_insert": lambda s: [
        {
            "order_id": s.order_id,
            "goods_id": goods_id,
            "goods_name": s.goods[goods_id][0],
            "goods_price": s.goods[goods_id][1],
            "nums": nums,
        }
        for goods_id, nums in s.lines
    ],
    "order_event_insert": lambda s: [
        {"order_id": s.order_id, "kind": "placed", "at": s.now, "actor": "customer", "trace_id": s.trace_id}
    ],
}

# The parameters of every other statement (their WHERE clauses and the stock update), in the order it takes them.
PARAMS = {
    "begin": lambda s: (),
    "token": lambda s: (s.token,),
    "goods_by_id": lambda s: (s.goods_id,),
    "cart_lines_locked": lambda s: (s.user_id,),
    "cart_checked_locked": lambda s: (True, s.user_id),
    "goods_for_sale": lambda s: (True, *set(_ids(s))),
    "stock_locked": lambda s: tuple(_ids(s)),
    "stock_update": lambda s: (
        *[value for goods_id, nums in s.lines for value in (goods_id, -nums)],
        s.now,  # updated_at
        *_ids(s),
    ),
    "cart_delete": lambda s: tuple(s.cart_ids),
}


def _absorb(name: str, rows: list[dict], state: CycleState) -> None:
    """Keep what the next statements need from a statement's rows (by column name; ``_READS`` lists them)."""
    if name == "cart_checked_locked":
        state.cart_ids = [row["id"] for row in rows]
        state.lines = [(row["goods_id"], row["nums"]) for row in rows]
    elif name == "goods_for_sale":
        state.goods = {row["id"]: (row["name"], Decimal(row["price"])) for row in rows}
    elif name == "order_insert":
        state.order_id = rows[0]["id"]


# The columns _absorb reads, per statement: check_replay makes sure the shop's statement returns them.
_READS = {
    "cart_checked_locked": {"id", "goods_id", "nums"},
    "goods_for_sale": {"id", "name", "price"},
    "order_insert": {"id"},
}


def _returned_columns(sql: str) -> set[str]:
    """The names of the columns a SELECT (or an INSERT ... RETURNING) returns."""
    unquoted = _unquoted(sql)
    if " RETURNING " in unquoted.upper():
        listing = re.split(r"\sRETURNING\s", unquoted, flags=re.IGNORECASE)[-1]
    else:
        listing = re.split(r"\sFROM\s", unquoted, maxsplit=1, flags=re.IGNORECASE)[0].split(None, 1)[1]
    return {item.split()[-1].rsplit(".", 1)[-1] for item in listing.split(",")}


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?")


def _same(built, captured) -> bool:
    if isinstance(built, str) and isinstance(captured, str) and _TIMESTAMP.fullmatch(built):
        return bool(_TIMESTAMP.fullmatch(captured))  # taken at another moment: the format must match
    return built == captured and type(built) in (type(captured), *type(captured).__mro__)


def _unquoted(sql: str) -> str:
    return sql.replace("`", "").replace('"', "")


def _column_defaults(table: str, columns: list[str]) -> dict[str, object]:
    """What Django writes for these columns of ``table`` when a model instance does not set them."""
    from django.apps import apps
    from django.db import connection

    model = next((m for m in apps.get_models() if m._meta.db_table == table), None)
    fields = {f.column: f for f in model._meta.concrete_fields} if model is not None else {}
    unknown = [column for column in columns if column not in fields]
    if unknown:
        raise AssertionError(f"the floor cannot fill {table}.{', '.join(unknown)}: teach checkout/floor.py's ROWS")
    return {column: fields[column].get_db_prep_save(fields[column].get_default(), connection) for column in columns}


@dataclass(frozen=True)
class Step:
    name: str
    sql: str
    skip: int = 0  # leading True parameters the backend compiled into the SQL (SQLite: `WHERE "checked"`)
    columns: tuple[str, ...] = ()  # an INSERT's columns, in the statement's order
    defaults: dict = field(default_factory=dict)  # its columns ROWS does not set → their model defaults

    def params(self, state: CycleState) -> tuple:
        if self.name not in ROWS:
            return PARAMS[self.name](state)[self.skip :]
        rows = ({**self.defaults, **row} for row in ROWS[self.name](state))
        return tuple(row[column] for row in rows for column in self.columns)


def _step(statement, state: CycleState) -> Step:
    """The statement as the floor runs it; AssertionError when it would not rebuild the captured parameters."""
    name = statement_name(statement.sql)
    captured = statement.params
    if name in ROWS:
        listed = _INSERT_COLUMNS.match(_unquoted(statement.sql)).group(1)
        columns = tuple(column.strip() for column in listed.split(","))
        unset = [column for column in columns if column not in ROWS[name](state)[0]]
        table = _TABLE.search(statement.sql).group(1)
        step = Step(name, statement.sql, columns=columns, defaults=_column_defaults(table, unset))
        built, compiled_in = step.params(state), ()
    else:
        step = Step(name, statement.sql, skip=max(0, len(PARAMS[name](state)) - len(captured)))
        compiled_in, built = PARAMS[name](state)[: step.skip], step.params(state)
    if len(built) != len(captured) or any(v is not True for v in compiled_in) or not all(map(_same, built, captured)):
        raise AssertionError(f"floor parameters of {name} differ from the shop's: {built!r} != {captured!r}")
    if name in _READS and not _READS[name] <= _returned_columns(statement.sql):
        raise AssertionError(f"floor reads columns of {name} the shop no longer selects: {statement.sql[:160]}")
    return step


def replay_plan(steps: list[Step], transactions: list[int | None]) -> list[Group]:
    """The steps as groups, one per transaction (or run of autocommit statements); a BEGIN (SQLite) opens the
    transaction that follows it."""
    groups: list[Group] = []
    current: tuple[int | None, list[Step]] | None = None
    pending_begin: list[Step] = []
    for step, transaction in zip(steps, transactions, strict=True):
        if step.name == "begin":
            pending_begin.append(step)
            continue
        if current is None or current[0] != transaction:
            if current is not None:
                groups.append(Group(current[0] is not None, tuple(current[1])))
            current = (transaction, [*pending_begin])
            pending_begin = []
        current[1].append(step)
    if current is not None:
        groups.append(Group(current[0] is not None, tuple(current[1])))
    return groups


@dataclass(frozen=True)
class Group:
    """Statements run together: one transaction (``atomic``) or autocommit statements."""

    atomic: bool
    steps: tuple[Step, ...]


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
        cart_ids=[cycle.cart_item_id],
        lines=[(cycle.goods_id, 1)],
        goods={cycle.goods_id: (cycle.goods_name, cycle.goods_price)},
        order_id=cycle.order_id,
    )
    steps = [_step(statement, state) for statement in cycle.statements]
    return replay_plan(steps, [statement.transaction for statement in cycle.statements])


def _timestamp(moment: datetime) -> str:
    return str(moment.replace(tzinfo=None))  # what Django passes for a DateTimeField (UTC, naive)


@dataclass(frozen=True)
class FloorClient:
    token: str
    user_id: int
    goods_id: int


# A traced shop stores the checkout span's ids: the floor writes values of that size.
_TRACE_ID, _SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def run_cycle(driver: Driver, plan: list[Group], client: FloorClient, fingerprint: str, pay_timeout: int) -> None:
    now = datetime.now(UTC)
    state = CycleState(
        trace_id=_TRACE_ID,
        span_id=_SPAN_ID,
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
                    cursor.execute(driver.sql(step.sql), step.params(state))
                    if cursor.description is not None:
                        names = [column[0] for column in cursor.description]
                        _absorb(step.name, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()], state)
                if group.atomic:
                    driver.commit()
                break
            except Exception as exc:
                if group.atomic:
                    driver.rollback()
                if attempt == 2 or not driver.retryable(exc):
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

    def loop(client: FloorClient, ready, jobs) -> None:
        driver = Driver(database_url, options)  # connected in its thread (sqlite3 requires it)
        try:
            ready()
            for _ in jobs:
                try:
                    run_cycle(driver, plan, client, fingerprint, pay_timeout)
                except Exception as exc:  # counted and reported; the floor must not hide failures
                    errors.append(exc)
        finally:
            driver.close()

    seconds = run_together(clients, range(cycles), loop)
    if errors:
        print(f"floor: {len(errors)} failed cycles, first: {errors[0]!r}")
    return FloorResult(cycles=cycles - len(errors), seconds=seconds, errors=len(errors))
