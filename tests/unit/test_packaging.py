"""`pip install .` (the README's first command) ships every package of the checkout.

pyproject.toml lists the packages by hand (``web/`` is installed as ``litequeue_web``), so a
new subpackage that is not added there works in an editable install and in every test, and
is missing from a real install: ``pip install .`` then fails at the first import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _packages_on_disk() -> set[str]:
    found = set()
    for init in (ROOT / "litequeue").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    for init in (ROOT / "web").rglob("__init__.py"):
        found.add(".".join(("litequeue_web", *init.parent.relative_to(ROOT / "web").parts)))
    return found


def test_every_package_of_the_checkout_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = sorted(_packages_on_disk() - listed)
    assert not missing, f"pyproject.toml's packages leave out {missing}: pip install . would not ship them"


def test_the_wheel_holds_every_module_and_template(tmp_path: Path) -> None:
    """Build the wheel ``pip install .`` installs, from a copy of the checkout (an in-tree
    ``build/`` left by an earlier build would hide a missing package), and look inside it."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("litequeue", "web"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("litequeue-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {str(p.relative_to(ROOT)) for p in (ROOT / "litequeue").rglob("*.py")}
    wanted |= {"litequeue_web/" + str(p.relative_to(ROOT / "web")) for p in (ROOT / "web").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(wanted - shipped)
    assert not missing, f"the wheel leaves out {missing[:10]}"
