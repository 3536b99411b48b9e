"""What the application does: cached queries over the ORM, and writes that invalidate."""

from __future__ import annotations

from django.db.models import F, Sum

from .models import Customer, Invoice, InvoiceLine
from .namespace_cache import cached_query, invalidate_user


def invoice_totals(user_id: int, status: str = "open") -> list[tuple[int, str, int]]:
    """The report's expensive query: invoices joined with customers and lines x products, aggregated."""
    rows = (
        Invoice.objects.filter(owner_id=user_id, status=status)
        .select_related("customer")
        .annotate(total=Sum(F("lines__quantity") * F("lines__product__price_cents")))
        .order_by("-total", "id")
        .values_list("id", "customer__name", "total")
    )
    return [(invoice_id, name, int(total or 0)) for invoice_id, name, total in rows]


def customer_names(user_id: int) -> list[str]:
    return list(Customer.objects.filter(owner_id=user_id).order_by("name").values_list("name", flat=True))


def cached_invoice_totals(user_id: int, status: str = "open") -> list[tuple[int, str, int]]:
    return cached_query(user_id, "invoice", f"totals:{status}", lambda: invoice_totals(user_id, status))


def cached_customer_names(user_id: int) -> list[str]:
    return cached_query(user_id, "customer", "names", lambda: customer_names(user_id))


def rename_customer(user_id: int, customer_id: int, name: str) -> None:
    Customer.objects.filter(owner_id=user_id, id=customer_id).update(name=name)
    invalidate_user(user_id)


def close_invoice(user_id: int, invoice_id: int) -> None:
    Invoice.objects.filter(owner_id=user_id, id=invoice_id).update(status="closed")
    invalidate_user(user_id)


def add_line(user_id: int, invoice_id: int, product_id: int, quantity: int) -> None:
    InvoiceLine.objects.create(invoice_id=invoice_id, product_id=product_id, quantity=quantity)
    invalidate_user(user_id)
