"""Gunicorn settings for the web process; every value can be overridden by env."""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", str((os.cpu_count() or 1) * 2 + 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# Gunicorn's default format starts with the client address (%(h)s); ours never records
# who asked (SPEC §10: the raw client IP is never stored): time, request, status, size,
# duration, user agent.
access_log_format = '%(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
preload_app = True
