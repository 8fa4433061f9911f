"""The status page's URLs: ``path("queue/", include("litequeue.contrib.django.urls"))`` in
the project's URLconf serves it at ``/queue/``, behind the admin's login (staff only)."""

from __future__ import annotations

from django.urls import re_path

from litequeue.contrib.django import views

app_name = "litequeue"
urlpatterns = [re_path(r"^(?P<path>.*)$", views.status_page, name="status_page")]
