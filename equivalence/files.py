"""Atomic file writes: every file the project writes (golden records and their manifest, the
CLI's ``--json`` and ``--report``) goes through :func:`atomic_write`.

The content goes to a temporary file in the destination's directory, is flushed and fsynced,
and is renamed over the destination with ``os.replace`` (atomic on POSIX and Windows within one
file system); the directory is then fsynced so the rename itself survives a crash. A writer
stopped at any point (an exception, Ctrl-C, a kill) leaves either the previous file, untouched,
or the new one, complete, never a half-written file under the destination's name; at worst a
hidden ``.<name>.<random>.tmp`` beside it (removed on an exception or Ctrl-C).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "stage", "fsync_directory"]


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make the directory's entries (a rename, an unlink) durable; a no-op where directories
    cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def stage(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` (bytes, or a function writing to a binary file) to a fsynced temporary
    file beside ``path`` and return its name; the caller renames it into place (``os.replace``)
    or deletes it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` by ``content`` atomically (see the module docstring). The parent
    directory must exist."""
    path = Path(path)
    tmp = stage(path, content)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write(path, text.encode(encoding))
