"""The demo shop of ``manage.py seed_demo``: goods with stock, users with full carts, a staff login.

Every seeding step is idempotent (what exists is left alone); the command runs them in one transaction.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from carts.selectors import cart_items
from carts.services import add_to_cart
from goods.models import Goods
from inventory.selectors import goods_ids_with_stock
from inventory.services import create_goods_with_stock, set_stock_quantity
from mall.errors import DomainError
from mall.roles import ensure_staff_roles

DEMO_PASSWORD = "mall-demo"  # place_test_orders --url logs in with it by default
STAFF_USERNAME = "admin"
CART_LINES_PER_USER = 3


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
        """Return every demo goods, created now or before, in catalog order."""
        return sorted(self.created + self.existing, key=lambda goods: goods.pk)


def demo_catalog(count: int) -> list[DemoGoods]:
    """Return the first ``count`` goods of the demo catalog: the same names and prices on every call."""
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
    with_stock = goods_ids_with_stock(goods_ids=[goods.pk for goods in existing_by_name.values()])

    seed = CatalogSeed()
    for item in wanted:
        goods = existing_by_name.get(item.name)
        if goods is None:
            seed.created.append(
                create_goods_with_stock(name=item.name, price=item.price, description=item.description, stock=stock)
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


def demo_username(number: int) -> str:
    return f"user{number}"


@dataclass
class PeopleSeed:
    created_users: list[str] = field(default_factory=list)
    existing_users: list[str] = field(default_factory=list)
    created_staff: bool = False
    staff_roles: list[str] = field(default_factory=list)
    filled_carts: dict[str, int] = field(default_factory=dict)  # username → lines added


def seed_users(*, count: int, password: str, staff: bool) -> tuple[PeopleSeed, list]:
    """Make sure users user1..user``count`` exist (with ``staff``, the superuser and staff roles too)."""
    User = get_user_model()
    seed = PeopleSeed()
    users = []
    usernames = [demo_username(number) for number in range(1, count + 1)]
    existing = {user.username: user for user in User.objects.filter(username__in=usernames)}
    for number in range(1, count + 1):
        username = demo_username(number)
        user = existing.get(username)
        if user is None:
            user = User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
            seed.created_users.append(username)
        else:
            seed.existing_users.append(username)
        users.append(user)
    if staff and not User.objects.filter(username=STAFF_USERNAME).exists():
        User.objects.create_superuser(username=STAFF_USERNAME, email="admin@example.com", password=password)
        seed.created_staff = True
    if staff:
        seed.staff_roles = [group.name for group in ensure_staff_roles()]
    return seed, users


def fill_empty_carts(*, users: list, goods: list[Goods], seed: PeopleSeed) -> None:
    """Put a few checked lines in each demo user's empty cart (a cart with lines is left alone)."""
    if not goods:
        return
    for offset, user in enumerate(users):
        if cart_items(user=user).exists():
            continue
        added = 0
        for line in range(CART_LINES_PER_USER):
            chosen = goods[(offset * CART_LINES_PER_USER + line) % len(goods)]
            try:
                add_to_cart(user=user, goods_id=chosen.pk, quantity=1 + line % 2)
            except DomainError:
                continue  # taken off sale by staff since: the cart gets the others
            added += 1
        if added:
            seed.filled_carts[user.username] = added
