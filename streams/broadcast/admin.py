"""Django admin for broadcast analytics. Stations are edited here (their encoders on the
stream's page, as providers); everything the poller, the push API and the imports write
is read-only. Secrets are write-only: never shown back. Every admin is scoped to the
user's organizers, like the playback side's."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from echonest_analytics.admin_utils import OrganizerScopedAdmin, RawEventAdmin, ReadOnlyAdmin
from streams.models import StreamProvider

from .models import (
    ENCODER_PROVIDERS,
    Alert,
    BroadcastLogEntry,
    HealthSnapshot,
    ListenerSession,
    ListenerSnapshot,
    Play,
    SongRequest,
    Station,
)
from .secrets import station_ingest_key_rotate


class StationForm(forms.ModelForm):
    # Write-only: the stored URL (with its password) is never rendered back; leaving the
    # field empty keeps it, "-" clears it.
    sam_database_url = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="mysql://user:password@host:3306/SAMDB. Write-only: leave empty to keep "
        "the current value, enter - to remove it.",
    )

    class Meta:
        model = Station
        fields = ["stream", "timezone", "plays_from_poller", "sam_database_url"]

    def clean_sam_database_url(self) -> str:
        value = self.cleaned_data.get("sam_database_url", "").strip()
        if not value:
            return self.instance.sam_database_url if self.instance.pk else ""
        if value == "-":
            return ""
        if not value.startswith(("mysql://", "mariadb://")):
            raise forms.ValidationError("Expected mysql://user:password@host:port/database.")
        return value


@admin.register(Station)
class StationAdmin(OrganizerScopedAdmin, admin.ModelAdmin):
    form = StationForm
    list_display = ["__str__", "stream_key", "timezone", "has_ingest_key", "has_sam"]
    search_fields = ["stream__title", "stream__key"]
    list_select_related = ["stream"]
    readonly_fields = ["ingest_key_prefix", "encoders"]
    actions = ["rotate_ingest_key"]

    @admin.display(description="stream key", ordering="stream__key")
    def stream_key(self, station: Station) -> str:
        return station.stream.key

    @admin.display(boolean=True, description="ingest key")
    def has_ingest_key(self, station: Station) -> bool:
        return bool(station.ingest_key_hash)

    @admin.display(boolean=True, description="SAM database")
    def has_sam(self, station: Station) -> bool:
        return bool(station.sam_database_url)

    @admin.display(description="encoders")
    def encoders(self, station: Station) -> str:
        if not station.pk:
            return "Save the station, then add Icecast or Shoutcast providers to its stream."
        rows = StreamProvider.objects.filter(stream=station.stream, provider__in=ENCODER_PROVIDERS)
        link = reverse("admin:streams_stream_change", args=[station.stream_id])
        listed = format_html_join(
            "",
            "<li>{} {} — {}</li>",
            (
                (p.get_provider_display(), p.external_id, (p.config or {}).get("url", ""))
                for p in rows
            ),
        )
        return format_html(
            '<ul style="margin:0">{}</ul><a href="{}">Edit the encoders on the stream</a>',
            listed or format_html("<li>{}</li>", "none yet"),
            link,
        )

    @admin.action(description="Make a new ingest key (shown once)")
    def rotate_ingest_key(self, request, queryset) -> None:
        for station in queryset.select_related("stream"):
            raw_key = station_ingest_key_rotate(station=station)
            messages.warning(
                request,
                f"New ingest key for {station.stream.key}: {raw_key} — copy it now, "
                "it is not shown again. The previous key no longer works.",
            )


@admin.register(ListenerSnapshot)
class ListenerSnapshotAdmin(OrganizerScopedAdmin, RawEventAdmin):
    organizer_path = "encoder__stream__organizer"
    list_display = [
        "encoder",
        "taken_at",
        "listeners",
        "server_peak",
        "source_up",
        "bitrate",
        "title",
    ]
    list_filter = ["source_up", "encoder__stream"]
    date_hierarchy = "taken_at"
    list_select_related = ["encoder"]


@admin.register(ListenerSession)
class ListenerSessionAdmin(OrganizerScopedAdmin, RawEventAdmin):
    organizer_path = "encoder__stream__organizer"
    list_display = ["encoder", "listener", "started_at", "last_seen_at"]
    list_filter = ["encoder__stream"]
    date_hierarchy = "started_at"
    list_select_related = ["encoder"]


@admin.register(Play)
class PlayAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    organizer_path = "station__stream__organizer"
    list_display = [
        "song",
        "station",
        "started_at",
        "played_ms",
        "crossfade",
        "listeners_at_start",
        "source",
    ]
    list_filter = ["source", "crossfade", "station"]
    search_fields = ["song__title", "song__artist"]
    date_hierarchy = "started_at"
    list_select_related = ["song", "station__stream"]
    show_full_result_count = False


@admin.register(SongRequest)
class SongRequestAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    organizer_path = "station__stream__organizer"
    list_display = ["external_id", "song", "station", "requested_at", "status", "played_at"]
    list_filter = ["status", "station"]
    search_fields = ["external_id", "song__title"]
    date_hierarchy = "requested_at"
    list_select_related = ["song", "station__stream"]


@admin.register(BroadcastLogEntry)
class BroadcastLogEntryAdmin(OrganizerScopedAdmin, RawEventAdmin):
    organizer_path = "station__stream__organizer"
    list_display = ["timestamp", "station", "level", "category", "event", "message"]
    list_filter = ["level", "category", "station"]
    search_fields = ["event", "message"]
    date_hierarchy = "timestamp"
    list_select_related = ["station__stream"]


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(OrganizerScopedAdmin, RawEventAdmin):
    organizer_path = "station__stream__organizer"
    list_display = [
        "station",
        "taken_at",
        "cpu_pct",
        "memory_mb",
        "ring_buffer_fill_deck_a",
        "ring_buffer_fill_deck_b",
        "stream_connected",
        "db_connected",
        "disk_free_mb",
    ]
    list_filter = ["stream_connected", "db_connected", "station"]
    date_hierarchy = "taken_at"
    list_select_related = ["station__stream"]


@admin.register(Alert)
class AlertAdmin(OrganizerScopedAdmin, ReadOnlyAdmin):
    organizer_path = "station__stream__organizer"
    list_display = ["kind", "subject", "station", "opened_at", "resolved_at", "message"]
    list_filter = ["kind", "station", ("resolved_at", admin.EmptyFieldListFilter)]
    date_hierarchy = "opened_at"
    list_select_related = ["station__stream"]
