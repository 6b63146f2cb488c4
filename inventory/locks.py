"""THE lock order of the shop's goods, stock and ledger rows; every writer follows it.

    1. goods rows      (shared; exclusive only for an edit of the goods itself, e.g. the admin's goods save)
    2. stock rows      (exclusive, ``SELECT ... FOR UPDATE`` in goods-id order: ``lock_stock_rows``)
    3. ledger rows     (inserted only: ``inventory_stockmove`` rows are never updated nor deleted)

On MariaDB/InnoDB inserting a row that references a goods (an order line, a ledger row) takes a
SHARED lock on that goods row, so "goods first" means: a writer inserts its ledger rows, or calls
``lock_goods_rows``, BEFORE it locks stock rows, never after. A writer that locked a stock row and
then inserted a ledger row would wait for a goods lock while holding a stock lock, the reverse of
the admin's goods save (goods row, then its stock row): a deadlock.

Who does what, in this order:
- checkout (``orders.checkout._place_order``): order lines + sell ledger rows (goods, shared), then
  ``lock_stock_rows``, then the relative update (``inventory.services.deduct_stock``).
- cancel, per-order close, overdue sweep: the order row(s) first (they are not goods/stock/ledger
  rows and no one holding a stock lock waits for one), then the return ledger rows (goods, shared),
  then ``lock_stock_rows`` and the update (``inventory.services.return_stock_of_orders``).
- staff stock edits (API, admin stock list and form, the goods page's stock inline):
  ``lock_goods_rows`` then ``lock_stock_rows``, then the update and its ledger row
  (``inventory.services._change_stock``). The admin's goods save updates the goods row (exclusive)
  before its stock inline, which is the same order.

Deadlocks that remain possible (none is known) and lock-wait timeouts are retried by the services
that own their transaction (``mall.db.retry_on_lock_conflict``): checkout, cancel, per-order close,
sweep, staff stock edits through the API. SQLite has one writer at a time: nothing to order there.
"""

from collections.abc import Iterable

from django.db import connection

from goods.models import Goods
from inventory.models import Stock
from mall.db import in_callers_transaction


@in_callers_transaction
def lock_goods_rows(goods_ids: Iterable[int]) -> None:
    """Take a shared lock on the goods rows (step 1), as inserting an order line or ledger row would.

    The locks last until the caller's transaction ends.
    """
    goods_ids = sorted(set(goods_ids))
    if not goods_ids or connection.vendor != "mysql":
        return  # SQLite: the transaction already holds the database's single writer lock
    quote = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(goods_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote(Goods._meta.pk.column)} FROM {quote(Goods._meta.db_table)} "
            f"WHERE {quote(Goods._meta.pk.column)} IN ({placeholders}) "
            f"ORDER BY {quote(Goods._meta.pk.column)} LOCK IN SHARE MODE",
            goods_ids,
        )


@in_callers_transaction
def lock_stock_rows(goods_ids: Iterable[int]) -> dict[int, int]:
    """Lock the stock rows of ``goods_ids`` (step 2); their quantities (goods without a stock row are missing).

    One locking read in goods-id order: concurrent writers take the row locks in the same order, so
    they queue instead of deadlocking.
    """
    rows = Stock.objects.select_for_update().filter(goods_id__in=list(goods_ids)).order_by("goods_id")
    return dict(rows.values_list("goods_id", "quantity"))
