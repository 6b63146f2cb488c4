"""Writes of the catalog."""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from goods.models import Goods
from inventory.models import Stock
from inventory.services import set_stock_quantity

# (name, base price, description) of the demo catalog; editions below multiply it.
_DEMO_PRODUCTS = (
    ("Arabica Coffee Beans 1 kg", "18.90", "Medium roast, whole beans from Minas Gerais."),
    ("Sencha Green Tea 100 g", "7.50", "Loose-leaf Japanese green tea."),
    ("Dark Chocolate 70% Bar", "3.20", "Single-origin cacao, 100 g."),
    ("Extra Virgin Olive Oil 750 ml", "11.40", "Cold-pressed, first harvest."),
    ("Basmati Rice 2 kg", "6.80", "Aged long-grain rice."),
    ("Stainless Steel Water Bottle", "21.00", "Keeps drinks cold for 24 hours."),
    ("Cotton Crew T-Shirt", "14.90", "Organic cotton, regular fit."),
    ("Merino Wool Socks", "12.50", "Soft, warm and odour resistant."),
    ("Canvas Tote Bag", "9.90", "Heavy canvas with an inner pocket."),
    ("Running Shoes", "79.00", "Cushioned daily trainer."),
    ("Wireless Earbuds", "49.00", "Bluetooth 5.3, 24 h with the case."),
    ("USB-C Charging Cable 2 m", "8.90", "Braided, 60 W."),
    ("Mechanical Keyboard", "89.00", "Tenkeyless, hot-swappable switches."),
    ("Wireless Mouse", "24.90", "Silent clicks, two-year battery."),
    ("27-inch Monitor", "219.00", "QHD IPS panel."),
    ("Paperback Notebook A5", "5.40", "Dotted pages, 160 sheets."),
    ("Gel Pens, Set of 10", "6.20", "Quick-drying ink."),
    ("Desk Lamp", "34.00", "Dimmable LED with a warm setting."),
    ("Ceramic Coffee Mug", "9.50", "350 ml, dishwasher safe."),
    ("Chef's Knife 20 cm", "45.00", "German stainless steel."),
    ("Bamboo Cutting Board", "16.00", "Knife-friendly, easy to clean."),
    ("Cast Iron Skillet 26 cm", "39.00", "Pre-seasoned."),
    ("French Press 1 l", "27.50", "Borosilicate glass."),
    ("Yoga Mat", "29.00", "6 mm, non-slip."),
    ("Dumbbell Set 2 x 5 kg", "42.00", "Neoprene coated."),
    ("Backpack 25 l", "59.00", "Water-repellent with a laptop sleeve."),
    ("Sunglasses", "35.00", "Polarised lenses, UV400."),
    ("Scented Candle", "13.00", "Cedar and vanilla, 40 hours."),
    ("Houseplant: Monstera", "24.00", "In a 17 cm nursery pot."),
    ("Board Game: Strategy Classic", "39.90", "2-4 players, about 60 minutes."),
)
_DEMO_EDITIONS = (
    ("", "1.00"),
    ("Large", "1.45"),
    ("Travel Size", "0.60"),
    ("Family Pack", "2.40"),
    ("Deluxe", "1.85"),
    ("Eco", "1.10"),
    ("Twin Pack", "1.90"),
    ("Gift Set", "2.75"),
)


@dataclass(frozen=True)
class DemoGoods:
    name: str
    price: Decimal
    description: str


@dataclass
class CatalogSeed:
    created: list[Goods] = field(default_factory=list)
    stocked: list[Goods] = field(default_factory=list)  # existed without a stock row; given one
    restocked: list[Goods] = field(default_factory=list)
    existing: list[Goods] = field(default_factory=list)

    @property
    def goods(self) -> list[Goods]:
        """Every demo goods, created now or before, in catalog order."""
        return sorted(self.created + self.existing, key=lambda goods: goods.pk)


def demo_catalog(count: int) -> list[DemoGoods]:
    """The first ``count`` goods of the demo catalog: the same names and prices on every call."""
    catalog = []
    per_round = len(_DEMO_PRODUCTS) * len(_DEMO_EDITIONS)
    for index in range(count):
        product_name, base_price, description = _DEMO_PRODUCTS[index % len(_DEMO_PRODUCTS)]
        edition, factor = _DEMO_EDITIONS[(index // len(_DEMO_PRODUCTS)) % len(_DEMO_EDITIONS)]
        name = f"{product_name}, {edition}" if edition else product_name
        if index >= per_round:
            name = f"{name} (No. {index // per_round + 1})"
        # Shop-style prices ending in 9: 12.49, 3.19, ...
        price = (Decimal(base_price) * Decimal(factor)).quantize(Decimal("0.1"), ROUND_HALF_UP) - Decimal("0.01")
        catalog.append(DemoGoods(name=name, price=max(price, Decimal("0.99")), description=description))
    return catalog


@transaction.atomic
def create_goods(*, name: str, price: Decimal, stock: int = 0, description: str = "", on_sale: bool = True) -> Goods:
    """Put a goods in the catalog with its stock row (the initial quantity is ledgered)."""
    if price < 0:
        raise ValueError("a price cannot be negative")
    goods = Goods.objects.create(name=name, price=price, description=description, on_sale=on_sale)
    set_stock_quantity(goods_id=goods.pk, quantity=stock)
    return goods


@transaction.atomic
def seed_demo_catalog(*, count: int, stock: int, restock: bool = False) -> CatalogSeed:
    """Make sure the first ``count`` demo goods exist (found by name), each with a stock row.

    Idempotent: goods that exist are left as they are, so a second run creates nothing and
    does not undo what orders did to the stock. ``restock`` sets every demo goods' stock back
    to ``stock`` (ledgered), e.g. after a load test sold it out.
    """
    wanted = demo_catalog(count)
    existing_by_name: dict[str, Goods] = {}
    for goods in Goods.objects.filter(name__in=[item.name for item in wanted]).order_by("id"):
        existing_by_name.setdefault(goods.name, goods)
    with_stock = set(Stock.objects.filter(goods__in=existing_by_name.values()).values_list("goods_id", flat=True))

    seed = CatalogSeed()
    for item in wanted:
        goods = existing_by_name.get(item.name)
        if goods is None:
            seed.created.append(
                create_goods(name=item.name, price=item.price, description=item.description, stock=stock)
            )
            continue
        seed.existing.append(goods)
        if goods.pk not in with_stock:
            set_stock_quantity(goods_id=goods.pk, quantity=stock)
            seed.stocked.append(goods)
        elif restock:
            set_stock_quantity(goods_id=goods.pk, quantity=stock)
            seed.restocked.append(goods)
    return seed
