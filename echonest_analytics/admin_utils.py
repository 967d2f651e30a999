"""Django admin building blocks for large, append-only tables."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a changelist over millions of events never runs COUNT(*)
    over the whole table; pages past the cap are reached by narrowing the filters."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.CAP].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by ingestion and jobs: staff may look, not touch."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RawEventAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
