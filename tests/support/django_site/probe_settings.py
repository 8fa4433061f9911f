"""A Django project on the database the test names: ``PROBE_DB`` (a SQLite path or a
PostgreSQL URL); ``PROBE_QUEUE_DB``: the queue in a database of its own instead."""

import os
from urllib.parse import urlsplit

SECRET_KEY = "tests only"
INSTALLED_APPS = ["litequeue.contrib.django", "probe"]
USE_TZ = True
TIME_ZONE = "UTC"
_db = os.environ["PROBE_DB"]
if "://" in _db:
    _url = urlsplit(_db)
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _url.path.lstrip("/"),
                             "HOST": _url.hostname, "PORT": str(_url.port or 5432), "USER": _url.username}}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db,
                             "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20}}}
LITEQUEUE = {"consumer": {"workers": 1}}
if os.environ.get("PROBE_QUEUE_DB"):
    LITEQUEUE["database"] = os.environ["PROBE_QUEUE_DB"]
