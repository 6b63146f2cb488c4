import secrets
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import models

from goods.models import Goods

IDEMPOTENCY_KEY_MAX_LENGTH = 100  # of the Idempotency-Key header, as stored with the order


def new_order_no(*, user_id: int, now: datetime) -> str:
    """Make an order number, time (ms) + user id + random: readable, sortable, unique (the DB enforces it)."""
    return f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}{user_id % 1_000_000:06d}{secrets.randbelow(10**6):06d}"


class ExactCharField(models.CharField):
    """A CharField compared byte for byte on every database.

    MariaDB/MySQL compare text with the column's collation, and utf8mb4's default ones ignore case:
    the column gets a binary collation there. SQLite already compares bytes (and has no utf8mb4_bin).
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        PAID = "paid", "paid"
        CANCELLED = "cancelled", "cancelled"
        CLOSED = "closed", "closed"  # unpaid past its deadline, stock returned

    order_no = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    pay_price = models.DecimalField(max_digits=14, decimal_places=2)
    address = models.CharField(max_length=255)
    signer_name = models.CharField(max_length=50)
    signer_mobile = models.CharField(max_length=20)
    post = models.CharField(max_length=20, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="when it was cancelled or closed")
    # The create_order span, so an order can be opened in Jaeger and the close linked to it.
    trace_id = models.CharField(max_length=32, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    # NULL when no key was sent: NULLs do not collide in the unique (user, key) constraint.
    idempotency_key = ExactCharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-id"], name="order_user_recent"),
            models.Index(fields=["status", "expires_at"], name="order_status_deadline"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="order_idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    goods = models.ForeignKey(Goods, on_delete=models.PROTECT, related_name="+")
    goods_name = models.CharField(max_length=200)
    goods_price = models.DecimalField(max_digits=12, decimal_places=2)
    nums = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "goods"], name="orderline_one_per_goods")]

    def __str__(self) -> str:
        return f"{self.nums} × {self.goods_name}"


class OrderEvent(models.Model):
    """One change of an order, written in the same transaction as the change: what, when, who, and its trace."""

    class Kind(models.TextChoices):
        PLACED = "placed", "placed"
        PAID = "paid", "paid"
        CANCELLED = "cancelled", "cancelled"
        CLOSED = "closed", "closed"
        EDITED = "edited", "edited"  # a staff edit of the delivery fields or the note

    class Actor(models.TextChoices):
        CUSTOMER = "customer", "customer"
        STAFF = "staff", "staff"
        TIMEOUT = "timeout", "timeout"  # the order's payment-timeout task
        SWEEP = "sweep", "sweep"  # the safety-net sweep of overdue orders

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.CharField(max_length=10, choices=Actor.choices)
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The request's or task's trace (32 hex digits), "" when it was not traced.
    trace_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor}"


class ClosedOrder(NamedTuple):
    """An order closed by ``close_overdue_batch``, with its create_order span (hex ids; empty if untraced)."""

    id: int
    order_no: str
    trace_id: str
    span_id: str
