"""Import the user's APP (``module`` or ``module:attr``) for the CLI."""

from __future__ import annotations

import importlib
import os
import sys

from litequeue.app import LiteQueue
from litequeue.base.errors import AppImportError, LiteQueueError


def load_app(spec: str | None) -> LiteQueue:
    """Import ``spec`` with the current directory on ``sys.path`` and return its LiteQueue.

    ``module`` finds the module's LiteQueue (or the default app its ``@task`` functions
    use); ``module:attr`` names it. Errors say whether the module was missing or raised.
    """
    if not spec:
        raise AppImportError("no APP given: pass MODULE or MODULE:ATTR, or set LITEQUEUE_APP")
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppImportError(
                f"cannot import APP {spec!r}: no module named {exc.name!r} in {os.getcwd()}; "
                "run from the folder that holds it or add that folder to PYTHONPATH") from None
        raise AppImportError(
            f"importing APP {spec!r} failed: it imports {exc.name!r}, which is not installed; "
            "install it in this environment") from None
    except LiteQueueError:
        raise  # already says what to do (a database error while the app opens it, say)
    except Exception as exc:  # noqa: BLE001 - report whatever the user's module raised
        raise AppImportError(
            f"importing APP {spec!r} raised {type(exc).__name__}: {exc}; fix the module") from None
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, LiteQueue):
            raise AppImportError(f"{module_name}.{attr} is not a LiteQueue (found {type(app).__name__})")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, LiteQueue)]
    if len(apps) == 1:
        return apps[0]
    if len(apps) > 1:
        raise AppImportError(f"{module_name} has several LiteQueue apps; name one as {module_name}:ATTR")
    from litequeue import app as app_module

    if app_module._default_app is not None:
        return app_module._default_app
    raise AppImportError(f"{module_name} defines no LiteQueue and no @task; nothing to run")
