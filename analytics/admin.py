"""Django admin for product events (read-only, safe on big tables) and their daily rollups."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.functional import cached_property

from .models import DailyRollup, Event


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a changelist over millions of events never runs COUNT(*)
    over the whole table; pages past the cap are reached by narrowing the filters."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.CAP].count()


class _RecentValuesFilter(admin.SimpleListFilter):
    """Filter choices from the last 30 days of rollups, instead of SELECT DISTINCT on raw events."""

    rollup_field = ""

    def lookups(self, request, model_admin):
        since = timezone.now().date() - dt.timedelta(days=30)
        names: set[str] = set()
        for values in DailyRollup.objects.filter(day__gte=since).values_list(
            self.rollup_field, flat=True
        ):
            names.update(values or {})
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class EventTypeFilter(_RecentValuesFilter):
    title = "event type"
    parameter_name = "event_type"
    rollup_field = "event_counts"


class FeatureFilter(_RecentValuesFilter):
    title = "feature"
    parameter_name = "feature"
    rollup_field = "feature_usage"


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "event_type", "user_id", "feature", "url", "received_at")
    list_filter = (EventTypeFilter, FeatureFilter, ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("=user_id", "=uuid")
    ordering = ("-occurred_at",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Erasure goes through GDPR erase, which also fixes rollups and live counters.
        return False


@admin.register(DailyRollup)
class DailyRollupAdmin(admin.ModelAdmin):
    list_display = ("day", "total_events", "dau", "needs_recompute", "computed_at")
    list_filter = ("needs_recompute",)
    date_hierarchy = "day"
    readonly_fields = [f.name for f in DailyRollup._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
