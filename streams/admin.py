"""Django admin of the playback side. Every admin is scoped to the user's organizers."""

from django import forms
from django.contrib import admin

from echonest_analytics.admin_utils import OrganizerScopedAdmin, RawEventAdmin, ReadOnlyAdmin

from .models import (
    BunnyVideoStats,
    Organizer,
    PlaybackBatch,
    PlaybackEvent,
    Stream,
    StreamProvider,
    StreamStats,
    ViewerSession,
)


@admin.register(Organizer)
class OrganizerAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    organizer_path = ""
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]


# Provider config keys that hold secrets (an Icecast admin password, an API key): never
# rendered back into the form (SPEC §10); an unchanged mask keeps the stored value.
SECRET_CONFIG_KEYS = frozenset({"admin_password", "password", "api_key", "secret", "token"})
SECRET_MASK = "********"  # noqa: S105 - a display mask, not a secret


class StreamProviderForm(forms.ModelForm):
    class Meta:
        model = StreamProvider
        fields = ["provider", "external_id", "config", "is_primary"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.config if self.instance.pk else None
        if isinstance(config, dict):
            self.initial["config"] = {
                key: SECRET_MASK if key in SECRET_CONFIG_KEYS and value else value
                for key, value in config.items()
            }

    def clean_config(self):
        config = self.cleaned_data.get("config")
        stored = self.instance.config if self.instance.pk else {}
        if isinstance(config, dict) and isinstance(stored, dict):
            config = {
                key: stored.get(key, "") if value == SECRET_MASK else value
                for key, value in config.items()
            }
        return config


class StreamProviderInline(OrganizerScopedAdmin, admin.TabularInline):
    model = StreamProvider
    form = StreamProviderForm
    extra = 1


@admin.register(Stream)
class StreamAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    organizer_path = "organizer"
    list_display = ["title", "key", "organizer", "kind", "status", "created_at"]
    list_filter = ["status", "kind", "organizer"]
    search_fields = ["title", "key"]
    prepopulated_fields = {"key": ["title"]}
    inlines = [StreamProviderInline]


@admin.register(ViewerSession)
class ViewerSessionAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    list_display = [
        "client_id",
        "stream",
        "started_at",
        "last_event_at",
        "watch_seconds",
        "buffer_seconds",
        "error_count",
        "country",
        "device",
        "finalized",
    ]
    list_filter = ["finalized", "device", "stream"]
    search_fields = ["client_id"]
    date_hierarchy = "started_at"
    list_select_related = ["stream"]
    show_full_result_count = False


@admin.register(StreamStats)
class StreamStatsAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    list_display = [
        "stream",
        "day",
        "unique_viewers",
        "sessions",
        "total_watch_seconds",
        "avg_watch_seconds",
        "peak_concurrent_viewers",
        "buffer_ratio",
        "error_rate",
        "startup_time_median_ms",
        "exits_before_start",
        "playback_failure_rate",
        "rebuffer_frequency",
        "last_calculated_at",
    ]
    list_filter = ["stream", "stream__organizer"]
    date_hierarchy = "day"
    list_select_related = ["stream"]


@admin.register(PlaybackEvent)
class PlaybackEventAdmin(OrganizerScopedAdmin, RawEventAdmin):
    list_display = ["occurred_at", "type", "client_id", "stream", "video_time", "device", "country"]
    list_filter = ["type", "device", "stream"]
    date_hierarchy = "occurred_at"
    list_select_related = ["stream"]
    ordering = ["-id"]


@admin.register(PlaybackBatch)
class PlaybackBatchAdmin(OrganizerScopedAdmin, RawEventAdmin):
    list_display = ["received_at", "batch_id", "stream", "client_id", "event_count", "pending"]
    list_filter = ["pending"]
    date_hierarchy = "received_at"
    ordering = ["-id"]


@admin.register(BunnyVideoStats)
class BunnyVideoStatsAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    list_display = ["video_guid", "library_id", "day", "views", "watch_time_seconds", "fetched_at"]
    list_filter = ["library_id"]
    search_fields = ["video_guid"]
    date_hierarchy = "day"

    def organizer_scope(self, request, queryset):
        """Bunny's rows name a video, not a stream: the user's streams' Bunny videos."""
        if request.user.is_superuser:
            return queryset
        videos = StreamProvider.objects.filter(
            provider=StreamProvider.Provider.BUNNY_STREAM,
            stream__organizer__members=request.user,
        ).values("external_id")
        return queryset.filter(video_guid__in=videos)
