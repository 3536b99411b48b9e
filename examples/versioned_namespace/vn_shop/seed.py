"""Deterministic test data: 100 users, each with customers and invoices with lines."""

from __future__ import annotations

import random

from .models import Customer, Invoice, InvoiceLine, Product

USERS = 100
CUSTOMERS_PER_USER = 5
INVOICES_PER_USER = 20
LINES_PER_INVOICE = 4


def seed(seed_value: int = 7) -> None:
    rng = random.Random(seed_value)
    products = Product.objects.bulk_create(
        Product(name=f"product {index}", price_cents=rng.randint(100, 10_000)) for index in range(50)
    )
    customers = Customer.objects.bulk_create(
        Customer(owner_id=user, name=f"customer {user}-{index}", country=rng.choice(["DE", "FR", "US"]))
        for user in range(1, USERS + 1)
        for index in range(CUSTOMERS_PER_USER)
    )
    by_owner: dict[int, list[Customer]] = {}
    for customer in customers:
        by_owner.setdefault(customer.owner_id, []).append(customer)
    invoices = Invoice.objects.bulk_create(
        Invoice(owner_id=user, customer=rng.choice(by_owner[user]), status=rng.choice(["open", "open", "paid"]))
        for user in range(1, USERS + 1)
        for _ in range(INVOICES_PER_USER)
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, product=rng.choice(products), quantity=rng.randint(1, 9))
        for invoice in invoices
        for _ in range(LINES_PER_INVOICE)
    )
