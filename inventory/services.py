"""Writes of stock: every change goes through here and leaves a ledger row."""

from collections.abc import Mapping
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from goods.models import Goods
from goods.services import create_goods
from inventory.errors import InsufficientStock, StockChanged, StockLimitExceeded
from inventory.locks import lock_goods_rows, lock_stock_rows
from inventory.models import Stock, StockMove
from mall.db import in_callers_transaction, retry_on_lock_conflict

MAX_STOCK_QUANTITY = 2_000_000_000  # fits the integer column with room to spare


def _add_to_stock(deltas: Mapping[int, int]) -> None:
    """Add delta to quantity for each goods id and stamp ``updated_at``, in one relative UPDATE.

    Written by hand: the ORM's ``bulk_update``, or ``update()`` with a ``Case``, is slow to build (the
    profile's most expensive statement of the checkout; figures: docs/PERFORMANCE.md); this one is not.
    Only identifiers from the model's metadata are put into the text, quoted by the backend; every
    value is a bound parameter. The database's non-negative CHECK constraint still guards the result.
    """
    quote = connection.ops.quote_name
    table = quote(Stock._meta.db_table)
    goods = quote(Stock._meta.pk.column)
    quantity = quote(Stock._meta.get_field("quantity").column)
    updated_at = quote(Stock._meta.get_field("updated_at").column)
    cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
    placeholders = ", ".join(["%s"] * len(deltas))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {quantity} = {quantity} + CASE {goods} {cases} END, {updated_at} = %s"
            f" WHERE {goods} IN ({placeholders})",
            # updated_at is bound as the backend stores it (auto_now is bypassed by raw SQL): it shows
            # when the stock last changed, sales, returns and adjustments alike.
            [value for goods_id, delta in deltas.items() for value in (goods_id, delta)]
            + [Stock._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)]
            + list(deltas),
        )


@in_callers_transaction
def deduct_stock(*, order_no: str, quantities: Mapping[int, int]) -> None:
    """Take ``quantities`` (goods id → quantity) for an order, all or nothing.

    Three statements whatever the number of lines: ledger insert, lock, relative update. The ledger
    row goes first so that the stock rows stay locked only for the lock, the update and the
    caller's commit (call it last in the transaction: hot goods queue on that lock). A shortage
    raises and the caller's rollback undoes it all.
    Lock order (``inventory.locks``): the ledger insert share-locks the goods rows, then the stock rows.
    """
    StockMove.objects.bulk_create(
        StockMove(goods_id=goods_id, order_no=order_no, kind=StockMove.Kind.SELL, quantity=quantity)
        for goods_id, quantity in quantities.items()
    )
    available = lock_stock_rows(quantities.keys())
    short = sorted(goods_id for goods_id, quantity in quantities.items() if available.get(goods_id, 0) < quantity)
    if short:
        raise InsufficientStock(goods=short)
    _add_to_stock({goods_id: -quantity for goods_id, quantity in quantities.items()})


@in_callers_transaction
def return_stock(*, order_no: str, quantities: Mapping[int, int]) -> int:
    """Give an order's quantities back to the stock; returns the total quantity returned.

    Call it once per order, in the transaction that moved the order out of ``pending``: that
    conditional update is what makes the return happen once, and the ledger's unique
    (order_no, goods, kind) constraint refuses a second return should a caller ever try.
    """
    return return_stock_of_orders(quantities_by_order={order_no: quantities})


@in_callers_transaction
def return_stock_of_orders(*, quantities_by_order: Mapping[str, Mapping[int, int]]) -> int:
    """Give several orders' quantities back (order no → goods id → quantity); returns the total returned.

    Three statements whatever the number of orders and lines: one ledger insert of a return row per
    order and goods, one locking read of the stock rows of every goods involved (goods-id order, as the
    checkout), one relative update with the quantities summed per goods. The ledger rows go first: their
    foreign key share-locks the goods rows, and the lock order (``inventory.locks``) is goods rows
    before stock rows, the order of the admin's goods save. Every ordered goods has a stock row (stock
    rows are never deleted). Same rules as ``return_stock``: call it in the transaction that moved
    exactly these orders out of ``pending``; a second return of any (order, goods) is refused by the
    ledger's unique constraint (IntegrityError), and the caller's rollback undoes the whole batch.
    """
    moves = [
        StockMove(goods_id=goods_id, order_no=order_no, kind=StockMove.Kind.RETURN, quantity=quantity)
        for order_no, quantities in quantities_by_order.items()
        for goods_id, quantity in quantities.items()
    ]
    if not moves:
        return 0
    deltas: dict[int, int] = {}
    for move in moves:
        deltas[move.goods_id] = deltas.get(move.goods_id, 0) + move.quantity
    StockMove.objects.bulk_create(moves)
    stocked = lock_stock_rows(deltas.keys())
    if stocked.keys() != deltas.keys():
        # Cannot happen (stock rows are created with their goods and never deleted); refuse rather
        # than ledger a return that the stock would not show.
        raise RuntimeError(f"returning stock: no stock row for goods {sorted(deltas.keys() - stocked.keys())}")
    _add_to_stock(deltas)
    return sum(deltas.values())


def _change_stock(*, goods_id: int, user, target) -> Stock:
    """Lock the goods then its stock row (``inventory.locks``), set ``target(current)``, ledger the delta.

    The stock row is created (at 0) for a goods that has none yet. One ``adjust`` row holds the
    delta and the staff user; no change, no row.
    """
    lock_goods_rows([goods_id])
    current = lock_stock_rows([goods_id]).get(goods_id)
    if current is None:
        Stock.objects.create(goods_id=goods_id, quantity=0)
        current = 0
    quantity = target(current)
    if quantity > MAX_STOCK_QUANTITY:
        raise StockLimitExceeded(max_quantity=MAX_STOCK_QUANTITY)
    if quantity != current:
        Stock.objects.filter(goods_id=goods_id).update(quantity=quantity, updated_at=timezone.now())
        StockMove.objects.create(goods_id=goods_id, kind=StockMove.Kind.ADJUST, quantity=quantity - current, user=user)
    return Stock.objects.select_related("goods").get(goods_id=goods_id)


@retry_on_lock_conflict
@transaction.atomic
def adjust_stock(*, goods_id: int, delta: int, user=None) -> Stock:
    """Add ``delta`` to a goods' stock quantity (negative: take it away); never below 0 (``InsufficientStock``).

    Relative, so it never writes back a quantity read earlier: what was sold meanwhile stays sold.
    """

    def target(current: int) -> int:
        if current + delta < 0:
            raise InsufficientStock(goods=[goods_id], quantity=current)
        return current + delta

    return _change_stock(goods_id=goods_id, user=user, target=target)


@retry_on_lock_conflict
@transaction.atomic
def set_stock_quantity(*, goods_id: int, quantity: int, expected_quantity: int | None = None, user=None) -> Stock:
    """Set the quantity of a goods, only if it is still ``expected_quantity`` (else ``StockChanged``).

    Staff surfaces always pass the quantity their page showed as ``expected_quantity``, so a sale
    between the read and the save is never undone. ``None`` sets it whatever it is: for seeding and
    the explicit restock of ``seed_demo --restock`` only. Creates the stock row if needed.
    """
    if quantity < 0:
        raise ValueError("stock quantity cannot be negative")

    def target(current: int) -> int:
        if expected_quantity is not None and current != expected_quantity:
            raise StockChanged(quantity=current, expected_quantity=expected_quantity)
        return quantity

    return _change_stock(goods_id=goods_id, user=user, target=target)


@transaction.atomic
def create_goods_with_stock(
    *, name: str, price: Decimal, stock: int = 0, description: str = "", on_sale: bool = True
) -> Goods:
    """Put a goods in the catalog with its stock row (the initial quantity is ledgered)."""
    goods = create_goods(name=name, price=price, description=description, on_sale=on_sale)
    set_stock_quantity(goods_id=goods.pk, quantity=stock)
    return goods
