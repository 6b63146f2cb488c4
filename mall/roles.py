"""The staff roles a shop sets up, as Django groups of model permissions (``seed_demo --staff`` creates them).

Staff accounts need ``is_staff`` to open the admin and one of these groups to do anything there;
the API checks the same permissions (the stock API needs ``inventory.change_stock``).
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from traces.permissions import VIEW_TRACES

STAFF_ROLES: dict[str, tuple[str, ...]] = {
    # Answers customers: sees orders and cancels pending ones (returns their stock), sees stock, and
    # follows an order's "Open trace" links.
    "support": (
        "orders.view_order",
        "orders.change_order",
        "goods.view_goods",
        "inventory.view_stock",
        VIEW_TRACES,
    ),
    # Counts and restocks: changes stock quantities (ledgered with their name), reads the ledger.
    "stock clerk": (
        "goods.view_goods",
        "inventory.view_stock",
        "inventory.change_stock",
        "inventory.view_stockmove",
    ),
    # Keeps the catalog: adds goods, changes names, prices and on-sale (and their stock).
    "catalog manager": (
        "goods.view_goods",
        "goods.add_goods",
        "goods.change_goods",
        "inventory.view_stock",
        "inventory.change_stock",
        "inventory.view_stockmove",
    ),
}


def ensure_staff_roles() -> list[Group]:
    """Create (or reset to exactly these permissions) one group per role; idempotent."""
    groups = []
    for name, perms in STAFF_ROLES.items():
        wanted = Q()
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted |= Q(content_type__app_label=app_label, codename=codename)
        permissions = list(Permission.objects.filter(wanted))
        if len(permissions) != len(perms):
            raise LookupError(f"staff role {name!r}: some permissions do not exist (run migrate first)")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
        groups.append(group)
    return groups
