"""Content negotiation for every DRF view: an explicit `?format=` wins over `Accept`.

A staff member who clicks "Download CSV" or a script asking `?format=csv` has said
what they want; the Accept header their browser or HTTP library sends by habit
(`application/json`, `text/html,…`) must not turn that into a 406. Among the
renderers of the asked format the Accept header still chooses (the schema view has
two JSON renderers); when none of them matches it, the first one answers.

A format the view does not offer is a bad query parameter: 400 naming the formats
it does offer, raised as a ValidationError so each endpoint answers it in its own
error shape (DRF's default would be a bare 404 "Not found.").
"""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation

# Enough of an unknown format to recognise it; a 10 kB value is not echoed back.
_SHOWN_CHARS = 32


def unsupported_format_message(requested: str, offered: list[str]) -> str:
    shown = requested if len(requested) <= _SHOWN_CHARS else requested[:_SHOWN_CHARS] + "…"
    return f"unsupported format {shown!r}; expected one of: {', '.join(offered)}"


class FormatOverrideNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if not requested:
            return super().select_renderer(request, renderers, format_suffix)
        chosen = [renderer for renderer in renderers if renderer.format == requested]
        if not chosen:
            offered = list(dict.fromkeys(renderer.format for renderer in renderers))
            raise ValidationError(
                {self.settings.URL_FORMAT_OVERRIDE: unsupported_format_message(requested, offered)}
            )
        try:
            return super().select_renderer(request, chosen, format_suffix)
        except NotAcceptable:
            return chosen[0], chosen[0].media_type
