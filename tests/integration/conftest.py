"""Fixtures the ``using()`` suites share (plain DB-API connections and Django's)."""

from __future__ import annotations

import pytest

from litequeue.store.doorbell import make_doorbell


@pytest.fixture
def app(make_app):
    app = make_app("shop")

    @app.task()
    def work(n):
        return n

    @app.task(unique=True, unique_for=60)
    def invoice(number):
        return number

    @app.task(tags=["billing"])
    def charge(n):
        return n

    app.work, app.invoice, app.charge = work, invoice, charge
    app.storage  # noqa: B018 - the schema, before the application's connection opens
    return app


@pytest.fixture
def bell(app):
    """A consumer's doorbell on the app's database (a socket, or LISTEN)."""
    bell = make_doorbell(app.bell_target, "test-listener")
    bell.wait(0)
    yield bell
    bell.close()
