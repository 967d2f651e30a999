"""Test settings: the real settings, with a fast password hasher (cookiecutter-django habit)."""

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
