"""Development settings: the real settings with DEBUG on unless the environment says
otherwise (cookiecutter-django's local/production split). `manage.py`, `make` and the
test settings default to this module; production processes name
`echonest_analytics.settings` (Dockerfile, docker-compose.yml, Procfile), which refuses
to start without SECRET_KEY."""

import os

os.environ.setdefault("DEBUG", "true")

from .settings import *  # noqa: E402, F403
