"""Demo playback traffic for `manage.py seed_demo`."""

from __future__ import annotations


def seed_playback_demo(*, reset: bool = False) -> str:
    return "no streams yet"
