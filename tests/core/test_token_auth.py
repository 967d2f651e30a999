"""A bad token is an authentication failure: 401 with `WWW-Authenticate: Token` (RFC 9110),
on every staff API, not the 403 of a user who is known but not allowed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

STAFF_APIS = [
    ("get", "/admin/analytics/streams"),
    ("get", "/admin/analytics/streams/summary"),
    ("get", "/admin/analytics/streams/some-stream"),
    ("post", "/admin/analytics/streams/bunny-sync"),
    ("get", "/api/analytics/users/alice/export"),
    ("delete", "/api/analytics/users/alice"),
    ("get", "/api/analytics/usage"),
]


@pytest.mark.parametrize(("method", "path"), STAFF_APIS)
def test_an_invalid_token_gets_401_with_www_authenticate(api_client, method, path):
    response = getattr(api_client, method)(path, HTTP_AUTHORIZATION="Token bad")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("method", "path"), STAFF_APIS)
def test_no_credentials_at_all_also_get_401(api_client, method, path):
    response = getattr(api_client, method)(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_staff_token_still_works(api_client, staff_user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=staff_user)
    response = api_client.get("/admin/analytics/streams", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
