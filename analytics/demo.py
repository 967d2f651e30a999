"""Demo product events for `manage.py seed_demo`."""

from __future__ import annotations


def seed_product_demo(*, reset: bool = False) -> str:
    return "no product events yet"
