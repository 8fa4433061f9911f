"""The ``litequeue`` click group and what every command shares: the group's options, its
error-to-exit-status mapping, and the hook lists through which command modules add to ``status``.

Exit statuses, the same for every command (``health`` adds its own 1 and 2, see there):
0 done; 1 a runtime error (the database, a job: trying again may help); 2 a usage or
configuration error (a bad flag, variable or config file, an APP that cannot be imported, a
database schema newer than this litequeue: trying again will not help, so systemd units list
it in ``RestartPreventExitStatus``); 3 the database's disk is full (nothing was written; free
space, then retry); 4 the database is read-only (its file, folder or filesystem refuses
writes; nothing was written).

Every command module does ``from litequeue.cli.root import main`` and registers itself on
it (rq's layout: rq/cli/cli.py holds the group). The group imports a command's modules when
that command is asked for (:attr:`Group.lazy`, click's "lazily loading subcommands"), so a
read command imports only what it runs: ``--help`` and :meth:`Group.load_all` import them all.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from litequeue.base import defaults, logs
from litequeue.base.errors import (
    AppImportError,
    ConfigurationError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    LiteQueueError,
    SchemaTooNewError,
    on_one_line,
)
from litequeue.cli import config as cfg

if TYPE_CHECKING:
    import peewee as pw

#: Exit status of usage and configuration errors (click's own for usage errors).
EXIT_CONFIG = 2
#: Exit status when the database's disk is full, and when it is read-only.
EXIT_FULL = 3
EXIT_READ_ONLY = 4


class ConfigError(click.ClickException):
    """A configuration error: one line, exit status 2 (systemd does not restart on it)."""

    exit_code = EXIT_CONFIG


class Group(click.Group):
    """Turns litequeue's errors into one line (``Error: ...``) and a non-zero exit, and imports
    each command's modules on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Command name -> the modules that define it (each registers itself on import).
        self.lazy: dict[str, tuple[str, ...]] = {}

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:  # every time: another command may have loaded only some of them
            for module in self.lazy[cmd_name]:  # (status is in cli.jobs; cli.inbox and cli.limits add to it)
                importlib.import_module(module)
            if cmd_name not in self.commands:
                raise RuntimeError(f"{', '.join(self.lazy[cmd_name])} registered no command {cmd_name!r}")
        command = self.commands.get(cmd_name)
        if command is not None:  # however its module came to be imported (a test may import it directly)
            show_envvars(command)
        return command

    def load_all(self) -> dict[str, click.Command]:
        """Every command, its modules imported (for whatever walks the whole tree: docs, tests)."""
        for name in self.lazy:
            self.get_command(None, name)
        return self.commands

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.BadParameter as exc:
            raise _on_one_line(_name_the_variable(exc)) from None
        except click.ClickException as exc:
            raise _on_one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigurationError, AppImportError, SchemaTooNewError) as exc:
            raise _on_one_line(ConfigError(str(exc))) from None
        except (DatabaseFullError, DatabaseReadOnlyError) as exc:
            fault = click.ClickException(str(exc))
            fault.exit_code = EXIT_FULL if isinstance(exc, DatabaseFullError) else EXIT_READ_ONLY
            raise _on_one_line(fault) from None
        except LiteQueueError as exc:
            raise _on_one_line(click.ClickException(str(exc))) from None
        except click.BadParameter as exc:
            raise _on_one_line(_name_the_variable(exc)) from None
        except click.ClickException as exc:
            raise _on_one_line(exc) from None


def show_envvars(command: click.Command) -> None:
    """Every option's variable in --help (``[env var: ...]``), through the command's subcommands."""
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_eager:
            param.show_envvar = True
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            show_envvars(sub)


def _on_one_line(exc: click.ClickException) -> click.ClickException:
    """The error's message (and a bad parameter's hint) with the user's control characters
    escaped, so the message stays one line whatever value it echoes."""
    exc.message = on_one_line(exc.message)
    if isinstance(exc, click.BadParameter) and isinstance(exc.param_hint, str):
        exc.param_hint = on_one_line(exc.param_hint)
    return exc


def _name_the_variable(exc: click.BadParameter) -> click.BadParameter:
    """A bad value that came from a variable is blamed on the variable, not on a flag
    the user never typed."""
    param, ctx = exc.param, exc.ctx
    if param is not None and ctx is not None and param.name and exc.param_hint is None:
        if ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT:
            name = cfg.envvar_of(ctx.auto_envvar_prefix, param)
            if name:
                exc.param_hint = f"environment variable {name}"
    return exc


def _export(ctx: click.Context, envvar: str, value: str) -> None:
    """Set ``envvar`` for this command (and the processes it starts); put it back when the
    command ends, since the CLI also runs in-process (Django's manage.py, click's runner)."""
    before = os.environ.get(envvar)
    os.environ[envvar] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(envvar, None)
        else:
            os.environ[envvar] = before

    ctx.call_on_close(restore)


#: Top-level settings the library reads from the environment; the group exports them.
EXPORTED = {"db": "LITEQUEUE_DB", "durability": "LITEQUEUE_DURABILITY",
            "busy_timeout": "LITEQUEUE_BUSY_TIMEOUT"}


@click.group(cls=Group, context_settings={"auto_envvar_prefix": "LITEQUEUE", "show_default": True,
                                          "help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="LITEQUEUE_CONFIG", metavar="FILE",
              help="Config file (default: ./litequeue.toml, else [tool.litequeue] in ./pyproject.toml).")
@click.option("--db", envvar="LITEQUEUE_DB", metavar="PATH|URL",
              help="Database: a SQLite path or a database URL (default ./litequeue.db).")
@click.option("--app", envvar="LITEQUEUE_APP", metavar="APP",
              help="The app (MODULE or MODULE:ATTR) for every command that imports one.")
@click.option("--durability", type=click.Choice(["full", "fast"]), envvar="LITEQUEUE_DURABILITY",
              default=None, help="full: an enqueue survives power loss; fast: only a crash "
                                 f"[default: {defaults.DURABILITY}].")
@click.option("--busy-timeout", type=click.FloatRange(0), envvar="LITEQUEUE_BUSY_TIMEOUT", default=None,
              metavar="SECONDS", help=f"How long a writer waits for the database lock "
                                      f"[default: {defaults.BUSY_TIMEOUT:g}].")
@click.option("--log-format", type=click.Choice(logs.FORMATS), default="text",
              help="text for people, json (one object per line) for log shippers.")
@click.option("--logfile", type=click.Path(dir_okay=False), default=None,
              help="Append logs to this file (reopened when logrotate moves it) instead of stderr.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug from every library).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="litequeue")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db: str | None, app: str | None,
         durability: str | None, busy_timeout: float | None, log_format: str, logfile: str | None,
         verbose: int, quiet: bool) -> None:
    """litequeue: a background-job queue for one host that needs no broker.

    Every option can also come from an environment variable (shown in each command's
    --help) or a config file; a flag beats a variable, which beats the file.
    """
    ctx.ensure_object(dict)
    if ctx.resilient_parsing:
        return
    origin = ("--config" if ctx.get_parameter_source("config_path") == ParameterSource.COMMANDLINE
              else "LITEQUEUE_CONFIG")
    config = cfg.find(config_path, origin)
    values = cfg.validate(ctx, main, config)
    settings, sources = _top_level(ctx, values)
    for name, envvar in EXPORTED.items():
        # The library (LiteQueue(), open_database) reads these variables itself.
        if settings[name] is not None and sources[name] != "environment":
            _export(ctx, envvar, str(settings[name]))
    default_map = {k: v for k, v in values.items() if k in main.list_commands(ctx)}
    if settings["app"] is not None:
        if sources["app"] == "config":
            cfg.feed_app(main, default_map, settings["app"])
        else:
            _export(ctx, cfg.APP_ENVVAR, settings["app"])
    ctx.default_map = default_map
    level = logs.level_for(settings["verbose"], settings["quiet"])
    try:
        logs.setup(level, settings["log_format"], settings["logfile"], settings["verbose"])
    except OSError as exc:
        raise ConfigurationError(f"cannot open log file {settings['logfile']}: {exc.strerror}; "
                                 "fix --logfile (LITEQUEUE_LOGFILE) or the folder's permissions") from None
    ctx.obj.update(db=settings["db"], log_level=level, config=config, settings=settings, sources=sources)


def _top_level(ctx: click.Context, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The group's settings and where each came from: a file value fills in only what no
    flag and no variable set (click's own order, applied here because the group's
    options are parsed before its callback can read the file)."""
    settings: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for param in main.params:
        name = param.name
        if not name or name in cfg.NOT_IN_FILE or name == "config_path":
            continue
        source = ctx.get_parameter_source(name)
        value = ctx.params.get(name)
        if source in (None, ParameterSource.DEFAULT) and name in values:
            value = param.type_cast_value(ctx, values[name])
            source_name = "config"
        else:
            source_name = {ParameterSource.COMMANDLINE: "flag", ParameterSource.ENVIRONMENT: "environment",
                           ParameterSource.DEFAULT_MAP: "config"}.get(source, "default")  # type: ignore[arg-type]
        settings[name] = value
        sources[name] = source_name
    return settings, sources


#: Hooks the command modules (inbox, limits) use to add to ``status``: ``extra(database)``
#: returns a dict merged into the status data (the ledger's database, opened without Huey);
#: ``printer(data)`` prints its part of the table after the consumers.
status_extras: list[Callable[[pw.Database], dict[str, Any]]] = []
status_printers: list[Callable[[dict[str, Any]], None]] = []
