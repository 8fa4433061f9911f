"""Settings of the shop example: one SQLite file holds Django's tables and the queue."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only for this example: set DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "litequeue.contrib.django",  # the queue, tasks.py discovery, run_consumer, the status page
    "shop",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "shop_site.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "static/"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB") or BASE_DIR / "db.sqlite3",
        # BEGIN IMMEDIATE (Django >= 5.1): a transaction takes the write lock at its start,
        # waiting up to `timeout` seconds for it, instead of failing when it first writes.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        # A file, not memory: the consumer the tests start must reach the test database.
        "TEST": {"NAME": BASE_DIR / "test_db.sqlite3"},
    },
}

# The queue lives in the default database (above): an enqueue inside transaction.atomic()
# is part of that transaction. `manage.py run_consumer` starts with these options.
LITEQUEUE = {
    "durability": "full",
    "consumer": {"workers": 2},
}
