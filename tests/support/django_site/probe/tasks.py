"""Tasks of the probe app (found by litequeue.contrib.django's autodiscovery)."""

import os

from django.db import connection

from litequeue.contrib.django import task


@task()
def note(text):
    with connection.cursor() as cur:
        cur.execute("INSERT INTO probe_note (text) VALUES (%s)", [text])
    return text


@task(queue="other")
def other_note(text):
    return note.call_local(text)


@task()
def drop_my_connection():
    """The database drops this job's Django connection (PostgreSQL: pg_terminate_backend)."""
    import psycopg

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    with psycopg.connect(os.environ["PROBE_DB"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid


@task()
def count_notes(*_):
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM probe_note")
        return cur.fetchone()[0]
