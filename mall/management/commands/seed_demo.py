"""``manage.py seed_demo``: a shop to play with — demo goods with stock, users with full carts, a staff login."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from goods.models import Goods
from mall.demo import DEMO_PASSWORD, STAFF_USERNAME, PeopleSeed, fill_empty_carts, seed_demo_catalog, seed_users


def _name_range(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


class Command(BaseCommand):
    help = (
        "Fill the shop with demo data: goods with stock, users user1..userN with a few checked items in their "
        "carts and (with --staff) the superuser 'admin'. Idempotent: what exists is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--goods", type=int, default=20, help="number of demo goods (default 20)")
        parser.add_argument("--stock", type=int, default=1000, help="units in stock of each new goods (default 1000)")
        parser.add_argument("--users", type=int, default=5, help="number of demo users user1..userN (default 5)")
        parser.add_argument(
            "--password", default=DEMO_PASSWORD, help=f"password of new demo users and admin (default {DEMO_PASSWORD})"
        )
        parser.add_argument(
            "--staff",
            action="store_true",
            help=f"also create the superuser '{STAFF_USERNAME}' and the staff role groups",
        )
        parser.add_argument(
            "--restock", action="store_true", help="set the stock of existing demo goods back to --stock (ledgered)"
        )
        parser.add_argument("--if-empty", action="store_true", help="do nothing if the shop already has goods or users")

    def handle(self, *args, goods, stock, users, password, staff, restock, if_empty, **options):
        if goods < 0 or stock < 0 or users < 0:
            raise CommandError("--goods, --stock and --users cannot be negative")
        if not password:
            raise CommandError("--password cannot be empty")
        if if_empty:
            goods_count, user_count = Goods.objects.count(), get_user_model().objects.count()
            if goods_count or user_count:
                self.stdout.write(f"Not seeding: the shop already has {goods_count} goods and {user_count} users.")
                return

        with transaction.atomic():
            catalog = seed_demo_catalog(count=goods, stock=stock, restock=restock)
            people, demo_users = seed_users(count=users, password=password, staff=staff)
            fill_empty_carts(users=demo_users, goods=catalog.goods, seed=people)
        self._report(catalog=catalog, people=people, stock=stock, password=password)

    def _report(self, *, catalog, people: PeopleSeed, stock: int, password: str) -> None:
        write, success = self.stdout.write, self.style.SUCCESS
        created_anything = False
        if catalog.created:
            created_anything = True
            write(success(f"Created {len(catalog.created)} goods with {stock} units in stock each:"))
            for goods in catalog.created:
                write(f"  #{goods.pk} {goods.name} — {goods.price}")
        if catalog.stocked:
            created_anything = True
            write(success(f"Gave {len(catalog.stocked)} existing goods without stock {stock} units each."))
        if catalog.restocked:
            write(success(f"Restocked {len(catalog.restocked)} goods to {stock} units."))
        if catalog.existing:
            write(f"{len(catalog.existing)} demo goods already existed (left as they are).")
        if people.created_users:
            created_anything = True
            write(success(f"Created users {_name_range(people.created_users)} with password {password!r}."))
        if people.existing_users:
            write(f"Users {_name_range(people.existing_users)} already existed (passwords unchanged).")
        if people.created_staff:
            created_anything = True
            write(success(f"Created the superuser {STAFF_USERNAME!r} with password {password!r} (admin: /admin/)."))
        if people.staff_roles:
            write(f"Staff roles (groups with their permissions): {', '.join(people.staff_roles)}.")
        if people.filled_carts:
            created_anything = True
            lines = sum(people.filled_carts.values())
            write(success(f"Put {lines} checked items in the carts of {len(people.filled_carts)} users."))
        if not created_anything:
            write("Nothing new: the demo data is already there.")
