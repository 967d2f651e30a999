"""Signal receivers: staff logins are product events too (EchoNest tracks `login`)."""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_logged_in
from django.db import DatabaseError, transaction
from django.dispatch import receiver

from .services import track

logger = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="analytics_track_staff_login")
def staff_login_track(sender, request, user, **kwargs) -> None:
    if not user.is_staff:
        return
    try:
        with transaction.atomic():  # a savepoint: a failure here must not break the login
            track(
                event_type="login",
                user_id=(user.email or user.get_username()).lower(),
                feature="admin",
                url=request.path if request is not None else "",
                metadata={"method": "password" if sender is not None else "unknown"},
            )
    except DatabaseError:
        logger.warning("login of %s not tracked", user.pk, exc_info=True)
