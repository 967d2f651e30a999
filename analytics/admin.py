"""Django admin for product events (read-only, safe on big tables) and their daily rollups."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.utils import timezone

from echonest_analytics.admin_utils import RawEventAdmin, ReadOnlyAdmin

from .models import DailyRollup, Event


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
class EventAdmin(RawEventAdmin):
    list_display = ("occurred_at", "event_type", "user_id", "feature", "url", "received_at")
    list_filter = (EventTypeFilter, FeatureFilter, ("occurred_at", admin.DateFieldListFilter))
    search_fields = ("=user_id", "=uuid")
    ordering = ("-occurred_at",)
    readonly_fields = [f.name for f in Event._meta.fields]
    # No delete either: erasure goes through GDPR erase, which also fixes rollups and
    # live counters.


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = ("day", "total_events", "dau", "needs_recompute", "computed_at")
    list_filter = ("needs_recompute",)
    date_hierarchy = "day"
    readonly_fields = [f.name for f in DailyRollup._meta.fields]
