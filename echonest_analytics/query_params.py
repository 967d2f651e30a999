"""Query parameters of the staff endpoints, read by a `FilterSerializer` per endpoint.

This module owns the fields those serializers are built from (each keeps the parsing
rule and the one message its endpoint has always had), the mixin that lets a
serializer name a field `from`, and the one way a FilterSerializer's errors become the
`{"param": "message"}` details the endpoints answer with.
"""

from __future__ import annotations

import datetime as dt
import keyword
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

INVALID_QUERY = "Invalid query parameters."


def query_errors(detail: Any) -> dict[str, str]:
    """One message per parameter, from a ValidationError's detail (`{"param": [msg, …]}`)."""
    if not isinstance(detail, dict):
        detail = {api_settings.NON_FIELD_ERRORS_KEY: detail}
    return {
        name: str(messages[0] if isinstance(messages, list) else messages)
        for name, messages in detail.items()
    }


def invalid_query_body(exc: serializers.ValidationError) -> dict[str, Any]:
    """The staff endpoints' 400: `{"error": "Invalid query parameters.", "details": {…}}`."""
    return {"error": INVALID_QUERY, "details": query_errors(exc.detail)}


class KeywordNamedFields:
    # Serializer mixin: a field declared as `from_` is the parameter or key `from` (a
    # Python keyword cannot be a class attribute); the order of the fields is kept.
    # A comment, not a docstring: drf-spectacular would show a docstring as the
    # description of every serializer that has none of its own.

    def get_fields(self):
        return {_public_name(name): field for name, field in super().get_fields().items()}


def _public_name(name: str) -> str:
    bare = name.removesuffix("_")
    return bare if name.endswith("_") and keyword.iskeyword(bare) else name


# The schemas of DayParam and SlugParam admit the empty value the fields take as absent
# (DRF reads an empty optional query value so), as the staff pages' filter forms send it.
@extend_schema_field(
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}
)
class DayParam(serializers.DateField):
    """A UTC day as `date.fromisoformat` reads it (YYYY-MM-DD), within [first, last].

    An empty value (`?from=`) counts as absent, as a form with an empty date field sends.
    """

    default_error_messages = {
        "invalid": "expected a date as YYYY-MM-DD",
        "out_of_range": "must lie between {first} and {last}",
    }

    def __init__(self, *, first: dt.date, last: dt.date, **kwargs):
        super().__init__(**kwargs)
        self.first, self.last = first, last

    def to_internal_value(self, value) -> dt.date:
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail("invalid")
        if not self.first <= day <= self.last:
            self.fail("out_of_range", first=self.first, last=self.last)
        return day


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "pattern": "^[-a-zA-Z0-9_]{1,100}$"},
            {"type": "string", "maxLength": 0},
        ]
    }
)
class SlugParam(serializers.CharField):
    """A slug of 1-100 `[-a-zA-Z0-9_]`, taken as sent (no trimming); anything else,
    NUL characters included, is the one `message`."""

    SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")

    def __init__(self, *, message: str, **kwargs):
        super().__init__(trim_whitespace=False, error_messages={"invalid": message}, **kwargs)

    def to_internal_value(self, data) -> str:
        # Checked before CharField's own validators run, so their messages never show.
        if not isinstance(data, str) or not self.SLUG.fullmatch(data):
            self.fail("invalid")
        return data


class IntegerParam(serializers.IntegerField):
    """A whole number as `int()` reads it (optionally only when it also matches `syntax`),
    with one `message` for every way it can be wrong, empty included: `?days=` is a
    mistake, not an absent parameter."""

    def __init__(self, *, message: str, syntax: re.Pattern[str] | None = None, **kwargs):
        kinds = ("invalid", "max_value", "min_value", "max_string_length")
        super().__init__(error_messages=dict.fromkeys(kinds, message), **kwargs)
        self.syntax = syntax

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data) -> int:
        text = str(data)
        if self.syntax is not None and not self.syntax.fullmatch(text):
            self.fail("invalid")
        try:
            return int(text)
        except ValueError:
            self.fail("invalid")


class ChoiceParam(serializers.ChoiceField):
    """One of `choices`; an empty value (`?period=`) counts as absent and takes the
    default, as DRF reads an empty optional query value — and the schema says so."""

    def __init__(self, *, choices, **kwargs):
        super().__init__(choices=choices, **kwargs)
        extend_schema_field(
            {
                "anyOf": [
                    {"type": "string", "enum": list(choices)},
                    {"type": "string", "maxLength": 0},
                ]
            }
        )(self)
