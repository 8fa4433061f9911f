"""A failed job's page shows the command that replays it in a terminal (text to copy: the
page never runs code)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.web.conftest import MakeApp, Seeded


def test_failed_job_page_shows_the_replay_command(client: FlaskClient, seeded: Seeded) -> None:
    job_id = seeded.ids["boom2"]
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f'<code class="mono" id="replay-command">litequeue jobs replay {job_id}</code>' in html


def test_succeeded_job_page_has_no_replay_command(client: FlaskClient, seeded: Seeded) -> None:
    html = client.get(f"/jobs/{seeded.ids['ok']}").get_data(as_text=True)
    assert "litequeue jobs replay" not in html


def test_read_only_page_shows_the_command_too(make_app: MakeApp, seeded: Seeded) -> None:
    html = make_app(read_only=True).test_client().get(f"/jobs/{seeded.ids['script']}").get_data(as_text=True)
    assert f"litequeue jobs replay {seeded.ids['script']}" in html
