"""The ``litequeue serve-web`` command: the status page, served by waitress."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from litequeue.base import defaults, sdnotify
from litequeue.cli.helpers import setup_logging, user_app
from litequeue.cli.migrate import no_migrate_option, prepare_database
from litequeue.cli.root import main


@main.command("serve-web")
@click.argument("app", envvar="LITEQUEUE_APP", required=False, metavar="[APP]")
@click.option("--host", default=defaults.WEB_HOST, show_envvar=True,
              help="Address to listen on. Anything but loopback needs --password-file.")
@click.option("--port", type=click.IntRange(0, 65535), default=defaults.WEB_PORT, show_envvar=True,
              help="Port to listen on (0: any free port).")
@click.option("--password-file", type=click.Path(dir_okay=False), envvar="LITEQUEUE_WEB_PASSWORD_FILE",
              show_envvar=True, default=None,
              help="File whose first line is the password; turns on HTTP Basic auth (any user name).")
@click.option("--read-only", is_flag=True, show_envvar=True, help="Hide and refuse every action.")
@click.option("--refresh", type=click.FloatRange(0.2, 3600), default=3.0, show_envvar=True, metavar="SECONDS",
              help="How often open pages fetch fresh data.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_envvar=True,
              help="Requests served at once.")
@no_migrate_option
@click.pass_context
def serve_web(ctx: click.Context, app: str | None, host: str, port: int, password_file: str | None,
              read_only: bool, refresh: float, threads: int, no_migrate: bool) -> None:
    """Serve the status page (and /metrics, /livez, /readyz) for the database.

    APP (MODULE or MODULE:ATTR, or $LITEQUEUE_APP) is optional: with it the periodic
    page shows each task's next run. The page never runs or unpickles job payloads.
    """
    import waitress

    from litequeue_web import WebSettings, check_bind, create_app, read_password_file

    setup_logging(ctx.obj["log_level"])
    password = read_password_file(password_file) if password_file else None
    check_bind(host, password)
    prepare_database(ctx, no_migrate, create=False)
    settings = WebSettings(db=ctx.obj.get("db"), password=password, read_only=read_only,
                           app=user_app(app) if app else None, host=host, refresh_seconds=refresh)
    try:
        server = waitress.create_server(create_app(settings), host=host, port=port, threads=threads,
                                        ident="litequeue", clear_untrusted_proxy_headers=True)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                   "pass another --port (or --port 0 for any free one)") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.effective_port}/"
    click.echo(f"litequeue status page: {url}{'  (read-only)' if read_only else ''}")
    stop = threading.Event()
    interval = sdnotify.watchdog_interval()
    if interval:
        threading.Thread(target=_feed_watchdog, args=(_self_url(host, server.effective_port), interval, stop),
                         name="litequeue-web-watchdog", daemon=True).start()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sdnotify.ready(f"serving {url}")
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stop.set()
        sdnotify.stopping("status page stopping")
        server.close()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _self_url(host: str, port: int) -> str:
    # A wildcard address is reached through loopback; the page answers loopback names.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/livez" if ":" in host else f"http://{host}:{port}/livez"


def _feed_watchdog(url: str, interval: float, stop: threading.Event) -> None:
    """Feed systemd's watchdog only while the server really answers, so a hung server is restarted."""
    while not stop.wait(interval):
        try:
            import urllib.request  # not imported by every command (start-up time)

            with urllib.request.urlopen(url, timeout=max(1.0, interval)) as response:
                alive = response.status == 200
        except OSError:
            alive = False
        if alive:
            sdnotify.watchdog()
