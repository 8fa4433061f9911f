"""Integrations with web frameworks (front-layer code): :mod:`litequeue.contrib.django`."""
