"""Moving files without ever overwriting one: atomic renames that refuse an existing name.

Everything the inbox moves stays inside the inbox's folder (one filesystem), so a move is a
rename: the file is at its old name or at its new one, never half-way.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_noreplace_works = _renameat2 is not None


def move_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; raise FileExistsError if ``dst`` exists (never overwrite),
    FileNotFoundError if ``src`` is gone.

    Uses ``renameat2(RENAME_NOREPLACE)``; where the filesystem lacks it, a hard link then an
    unlink (a crash between the two leaves the file under both names, never under none).
    """
    global _noreplace_works
    if _noreplace_works:
        res = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if res == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
        _noreplace_works = False
    os.link(src, dst, follow_symlinks=False)
    os.unlink(src)


def free_name(folder: Path, rel: str, companion: str | None = None) -> str:
    """``rel`` if nothing is at ``folder/rel`` (nor at its ``companion`` name, e.g. the
    ``.error.txt`` beside a failed file), else ``stem_2.ext``, ``stem_3.ext``, ..."""
    stem_dir, _, name = rel.rpartition("/")
    dot = name.find(".", 1)
    base, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    room = _name_max(folder) - len((companion or "").encode("utf-8", "surrogateescape"))
    n = 1
    while True:
        candidate = _fit(name, "", "", room) if n == 1 else _fit(base, f"_{n}", ext, room)
        full = f"{stem_dir}/{candidate}" if stem_dir else candidate
        if not os.path.lexists(folder / full) and (
                companion is None or not os.path.lexists(folder / (full + companion))):
            return full
        n += 1


def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) the filesystem holding ``folder`` takes."""
    for path in (folder, *folder.parents):
        try:
            return int(os.pathconf(path, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255


def _fit(base: str, suffix: str, ext: str, room: int) -> str:
    """``base + suffix + ext``, ``base`` (then ``ext``) cut short so that the name takes at most
    ``room`` bytes: a suffix (or a companion name) must not push a long name past the limit."""
    def size(text: str) -> int:
        return len(text.encode("utf-8", "surrogateescape"))

    while base and size(base + suffix + ext) > room:
        base = base[:-1]
    while ext and size(base + suffix + ext) > room:
        ext = ext[:-1]
    return base + suffix + ext


def move_to_free_name(src: Path, folder: Path, rel: str, companion: str | None = None) -> Path:
    """Move ``src`` to ``folder/rel``, or to the first free suffixed name; returns where."""
    while True:
        dst = folder / free_name(folder, rel, companion)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            move_noreplace(src, dst)
            return dst
        except FileExistsError:
            continue  # someone took that name a moment ago: pick the next


def write_new(path: Path, text: str) -> Path:
    """Write a new file, never replacing one: a taken name gets a suffix."""
    folder, name = path.parent, path.name
    while True:
        target = folder / free_name(folder, name)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return target


def remove_empty_dirs(path: Path, stop: Path) -> None:
    """Remove ``path`` and its empty parents up to (not including) ``stop``; never a file."""
    while path != stop and stop in path.parents:
        with contextlib.suppress(OSError):
            path.rmdir()
        if path.exists():
            return
        path = path.parent
