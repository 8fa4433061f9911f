"""Configuration in one place: flag > ``LITEQUEUE_*`` variable > config file > default.

The CLI does the precedence with click's own machinery: the config file becomes the
``default_map`` (which click ranks below the command line and the environment), so this
module only finds the file, checks it against the commands' declared options, and turns
it into that map.

The file is ``--config FILE`` (or ``$LITEQUEUE_CONFIG``), else ``./litequeue.toml``, else
the ``[tool.litequeue]`` table of ``./pyproject.toml``. Top-level keys are the ``litequeue``
group's options (``db``, ``app``, ``log-format``...); a table per command holds that
command's options (``[run-consumer] workers = 8``, ``[jobs.list] limit = 100``). A key is
an option's name with dashes (``worker-type``) or underscores; its variable is
``LITEQUEUE_<COMMAND>_<NAME>`` (``LITEQUEUE_RUN_CONSUMER_WORKER_TYPE``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from litequeue.base.errors import ConfigurationError

FILE_NAME = "litequeue.toml"
PYPROJECT = "pyproject.toml"
#: Group options that make no sense in a file (the file cannot name itself).
NOT_IN_FILE = {"config", "help", "version"}
#: The variable the user's APP is read from; a top-level ``app`` feeds every command's APP.
APP_ENVVAR = "LITEQUEUE_APP"


@dataclass
class ConfigFile:
    """The config file in effect (``path`` None when there is none) and its settings."""

    path: Path | None = None
    #: how it was chosen: "--config", "LITEQUEUE_CONFIG", "litequeue.toml", "pyproject.toml", "none"
    origin: str = "none"
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.path is None:
            return "no config file"
        return f"{self.path} [tool.litequeue]" if self.origin == PYPROJECT else str(self.path)


def find(explicit: str | os.PathLike[str] | None = None, origin: str = "--config",
         cwd: str | os.PathLike[str] | None = None) -> ConfigFile:
    """Find and read the config file (see the module docstring for the order).

    Raises :class:`ConfigurationError` for a named file that is missing, or any file that
    is not valid TOML."""
    folder = Path(cwd or os.getcwd())
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"config file {path} (from {origin}) does not exist; "
                                     f"fix the path or unset {origin}")
        return ConfigFile(path, origin, _read(path))
    own = folder / FILE_NAME
    if own.is_file():
        return ConfigFile(own, FILE_NAME, _read(own))
    pyproject = folder / PYPROJECT
    if pyproject.is_file():
        table = _read(pyproject).get("tool", {}).get("litequeue")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigurationError(f"{pyproject}: tool.litequeue must be a table ([tool.litequeue])")
            return ConfigFile(pyproject, PYPROJECT, table)
    return ConfigFile()


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML ({exc}); see the Configuration section "
                                 "of docs/operations.md for the format") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8: tomllib decodes the whole file first
        raise ConfigurationError(f"{path}: not valid TOML (not UTF-8 text: byte {exc.object[exc.start]:#04x} at "
                                 f"position {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None


def key_of(param: click.Parameter) -> str:
    """The config-file key of a parameter: its name with dashes."""
    return (param.name or "").replace("_", "-")


def _aliases(param: click.Parameter) -> Iterator[str]:
    yield key_of(param)
    for opt in getattr(param, "opts", []):
        if opt.startswith("--"):
            yield opt[2:]


def settable(command: click.Command) -> dict[str, click.Parameter]:
    """The parameters of ``command`` a config file may set, by every key that names them."""
    out: dict[str, click.Parameter] = {}
    for param in command.params:
        if not param.name or param.name in NOT_IN_FILE or getattr(param, "is_eager", False):
            continue
        for alias in _aliases(param):
            out.setdefault(alias, param)
            out.setdefault(alias.replace("-", "_"), param)
    return out


def expected(param: click.Parameter) -> str:
    """The form a value of ``param`` must take, in words (for error messages)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        text = "one of: " + ", ".join(str(c) for c in kind.choices)
    elif isinstance(kind, click.IntRange | click.FloatRange):
        number = "an integer" if isinstance(kind, click.IntRange) else "a number"
        bounds = kind._describe_range() if hasattr(kind, "_describe_range") else ""
        text = f"{number} ({bounds})" if bounds else number
    elif kind is click.INT:
        text = "an integer"
    elif kind is click.FLOAT:
        text = "a number"
    elif kind is click.BOOL or getattr(param, "is_flag", False):
        text = "true or false"
    elif isinstance(kind, click.Path | click.File):
        text = "a path (a string)"
    else:
        text = "a string"
    if getattr(param, "multiple", False) or param.nargs != 1:
        text = f"a list, each {text}"
    return text


def _check_value(ctx: click.Context, where: str, key: str, param: click.Parameter, value: Any) -> None:
    many = getattr(param, "multiple", False) or param.nargs != 1
    shown = f"{where}{key} = {value!r}"
    if isinstance(value, dict):
        raise ConfigurationError(f"{shown}: expected {expected(param)}, not a table")
    if many and not isinstance(value, list):
        raise ConfigurationError(f"{shown}: expected {expected(param)}")
    if not many and isinstance(value, list):
        raise ConfigurationError(f"{shown}: expected {expected(param)}, not a list")
    if getattr(param, "is_flag", False) and not isinstance(value, bool) and isinstance(param.type,
                                                                                      click.types.BoolParamType):
        raise ConfigurationError(f"{shown}: expected {expected(param)}")
    try:
        param.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise ConfigurationError(f"{shown}: expected {expected(param)} ({exc.message})") from None
    except (OverflowError, ValueError, TypeError, AttributeError) as exc:  # TOML's inf where an integer goes
        raise ConfigurationError(f"{shown}: expected {expected(param)} ({exc})") from None


def validate(ctx: click.Context, group: click.Group, config: ConfigFile) -> dict[str, Any]:
    """Check every key and value of ``config`` against ``group``'s commands and options.

    Returns the settings by parameter name (tables by command name), ready for
    ``ctx.default_map``. An unknown key or a bad value raises :class:`ConfigurationError`
    naming the file, the key and the form expected."""
    return _validate_command(ctx, group, config.data, config.label, "")


def _validate_command(ctx: click.Context, command: click.Command, data: Mapping[str, Any],
                      label: str, section: str) -> dict[str, Any]:
    params = settable(command)
    names = command.list_commands(ctx) if isinstance(command, click.Group) else []
    where = f"{label}: " + (f"[{section}] " if section else "")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not section and key == "queues" and key not in names:
            from litequeue.base.limits import queue_settings  # [queues.NAME]: per-queue limits, not a command

            out[key] = queue_settings(value, label)
            continue
        if key in names:  # a command's table: only then is that command's module imported
            assert isinstance(command, click.Group)
            sub = command.get_command(ctx, key)
            assert sub is not None
            if not isinstance(value, dict):
                raise ConfigurationError(f"{where}{key} must be a table ([{_join(section, key)}]) "
                                         "holding that command's options")
            out[key] = _validate_command(ctx, sub, value, label, _join(section, key))
            continue
        param = params.get(key)
        if param is None:
            known = sorted({key_of(p) for p in params.values()})
            tables = sorted(f"[{_join(section, name)}]" for name in names)
            hint = f"known keys: {', '.join(known) or 'none'}"
            if tables:
                hint += f"; command tables: {', '.join(tables)}"
            raise ConfigurationError(f"{where}unknown key {key!r}; {hint}")
        _check_value(ctx, where, key, param, value)
        assert param.name is not None
        out[param.name] = value
    return out


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def feed_app(group: click.Group, default_map: dict[str, Any], app: str) -> None:
    """Give every command whose APP comes from ``$LITEQUEUE_APP`` the top-level ``app``
    as its default, unless its own table sets one."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            feed_app(command, default_map.setdefault(name, {}), app)
            continue
        for param in command.params:
            if param.name and _envvars(param) & {APP_ENVVAR}:
                default_map.setdefault(name, {}).setdefault(param.name, app)


def _envvars(param: click.Parameter) -> set[str]:
    envvar = param.envvar
    if envvar is None:
        return set()
    return {envvar} if isinstance(envvar, str) else set(envvar)


def envvar_of(ctx_prefix: str | None, param: click.Parameter) -> str | None:
    """The environment variable click reads ``param`` from (explicit, else automatic)."""
    names = _envvars(param)
    if names:
        return sorted(names)[0]
    if ctx_prefix and param.name and getattr(param, "allow_from_autoenv", False):
        return f"{ctx_prefix}_{param.name.upper()}".replace("-", "_")
    return None

