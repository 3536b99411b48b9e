"""A small invoicing schema: the cached query joins invoices, customers and products."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    owner_id = models.IntegerField(db_index=True)
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2)

    class Meta:
        app_label = "vn_shop"


class Product(models.Model):
    name = models.CharField(max_length=100)
    price_cents = models.IntegerField()

    class Meta:
        app_label = "vn_shop"


class Invoice(models.Model):
    owner_id = models.IntegerField(db_index=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    status = models.CharField(max_length=10, default="open")

    class Meta:
        app_label = "vn_shop"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.IntegerField()

    class Meta:
        app_label = "vn_shop"
