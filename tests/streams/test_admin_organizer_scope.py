"""SPEC §10: staff of one organizer never see another's streams, in the admin as in the
staff API. A staff member of organizer A, holding every view permission of the playback
side, finds none of organizer B's rows in any changelist, change view or filter."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from streams.models import (
    BunnyVideoStats,
    Organizer,
    PlaybackBatch,
    PlaybackEvent,
    Stream,
    StreamProvider,
    StreamStats,
    ViewerSession,
)

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
B_SECRET = "beta-live-token-never-shown"


def _playback_side(organizer: Organizer, key: str, guid: str) -> dict:
    stream = Stream.objects.create(key=key, title=f"Title {key}", organizer=organizer)
    provider = StreamProvider.objects.create(
        stream=stream,
        provider="bunny_stream",
        external_id=guid,
        config={"library_id": "77", "token": f"{key}-token-never-shown"},
        is_primary=True,
    )
    return {
        "organizer": organizer,
        "stream": stream,
        "provider": provider,
        "viewersession": ViewerSession.objects.create(
            stream=stream, client_id=f"client-{key}", started_at=T, last_event_at=T
        ),
        "streamstats": StreamStats.objects.create(stream=stream, day=date(2026, 11, 20)),
        "playbackevent": PlaybackEvent.objects.create(
            stream=stream, client_id=f"client-{key}", type="play", occurred_at=T, received_at=T
        ),
        "playbackbatch": PlaybackBatch.objects.create(
            stream=stream,
            client_id=f"client-{key}",
            event_count=1,
            first_event_at=T,
            last_event_at=T,
            received_at=T,
        ),
        "bunnyvideostats": BunnyVideoStats.objects.create(
            library_id="77", video_guid=guid, day=date(2026, 11, 20), fetched_at=T
        ),
    }


@pytest.fixture
def sides(django_user_model):
    org_a = Organizer.objects.create(name="Alpha Records", slug="alpha")
    org_b = Organizer.objects.create(name="Beta Records", slug="beta")
    return (
        _playback_side(org_a, "alpha-live", "guid-alpha"),
        _playback_side(org_b, "beta-live", "guid-beta"),
    )


@pytest.fixture
def member_of_a(django_user_model, sides) -> Client:
    """Staff, not superuser, every view permission of the playback side, member of A."""
    user = django_user_model.objects.create_user("alpha-staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="streams", codename__startswith="view_")
        | Permission.objects.filter(codename__in=["change_stream", "add_stream"])
    )
    sides[0]["organizer"].members.add(user)
    client = Client()
    client.force_login(user)
    return client


MODELS = [
    "organizer",
    "stream",
    "viewersession",
    "streamstats",
    "playbackevent",
    "playbackbatch",
    "bunnyvideostats",
]


@pytest.mark.parametrize("name", MODELS)
def test_changelist_lists_only_the_members_organizer(member_of_a, sides, name):
    mine, theirs = sides
    response = member_of_a.get(reverse(f"admin:streams_{name}_changelist"))
    assert response.status_code == 200
    listed = {obj.pk for obj in response.context["cl"].result_list}
    assert listed == {mine[name].pk}
    html = response.content.decode()
    # Not in a row, not in a list filter's choices either.
    assert "beta-live" not in html
    assert "Beta Records" not in html


@pytest.mark.parametrize("name", MODELS)
def test_change_view_of_another_organizers_row_is_not_found(member_of_a, sides, name):
    mine, theirs = sides
    url = reverse(f"admin:streams_{name}_change", args=[theirs[name].pk])
    response = member_of_a.get(url)
    # The admin answers an object it cannot find with a redirect to its index.
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")
    assert B_SECRET not in response.content.decode()
    history = member_of_a.get(reverse(f"admin:streams_{name}_history", args=[theirs[name].pk]))
    assert history.status_code in (302, 404)
    own = member_of_a.get(reverse(f"admin:streams_{name}_change", args=[mine[name].pk]))
    assert own.status_code == 200


def test_stream_form_offers_only_the_members_organizers(member_of_a, sides):
    response = member_of_a.get(reverse("admin:streams_stream_add"))
    assert response.status_code == 200
    choices = {str(o) for o in response.context["adminform"].form.fields["organizer"].queryset}
    assert choices == {"Alpha Records"}


def test_stream_change_form_does_not_show_another_organizers_bunny_config(member_of_a, sides):
    theirs = sides[1]
    response = member_of_a.get(reverse("admin:streams_stream_change", args=[theirs["stream"].pk]))
    assert "beta-live-token-never-shown" not in response.content.decode()


def test_superuser_still_sees_every_organizer(client, superuser, sides):
    client.force_login(superuser)
    for name in MODELS:
        response = client.get(reverse(f"admin:streams_{name}_changelist"))
        assert {obj.pk for obj in response.context["cl"].result_list} == {
            side[name].pk for side in sides
        }
