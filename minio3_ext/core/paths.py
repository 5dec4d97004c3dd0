"""Where a dataset's image paths may point: inside its image root, at a regular file (issue 21 items 4, 6).

A dataset names its images by path; ``..``, an absolute path or a symlink can name any
file the user can read, and ``minio3 eval`` / ``coldstart`` send the images they read
to an endpoint. Every command that reads image paths from rows (``data convert``,
``data import-coldstart``, ``eval``, ``coldstart``) asks :func:`confine` here; the
one flag that lifts the rule is :data:`ALLOW_FLAG`. A path that names a named pipe, a
device or a socket is refused in every case (reading it would block forever, or never
end): :func:`confine` checks it, and :func:`file_sha256` (eval's resume key of an
image) opens without blocking and checks the open file again.

>>> import tempfile, os
>>> root = tempfile.mkdtemp()
>>> confine("a/b.jpg", root) == os.path.join(os.path.realpath(root), "a", "b.jpg")
True
>>> confine("../secret.jpg", root)
Traceback (most recent call last):
...
minio3_ext.core.paths.PathEscapeError: image '../secret.jpg' is outside the image root ...; pass --allow-outside-root to allow it)
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

__all__ = ["ALLOW_FLAG", "ALLOW_HELP", "PathEscapeError", "NotRegularFileError", "confine", "file_sha256"]

#: The command-line flag that lets image paths leave the image root, in every command.
ALLOW_FLAG = "--allow-outside-root"
ALLOW_HELP = ("let image paths in the rows point outside the image root (absolute paths, '..', symlinks); "
              "by default such a row is refused, since its file would be read (and, in eval, sent to the endpoint)")


class PathEscapeError(ValueError):
    """An image path :func:`confine` refuses; the message names the path (and, when it leaves
    the image root, the root and the flag)."""


class NotRegularFileError(PathEscapeError):
    """An image path that names a named pipe, a device, a socket or a folder: never read
    (a pipe blocks the reader forever). Caught wherever :class:`PathEscapeError` is."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(value: object, real: object, kind: str) -> NotRegularFileError:
    return NotRegularFileError(f"image {str(value)!r} is {kind} ({real}), not a regular file; refused "
                               "(reading it could block forever)")


def confine(value: str | os.PathLike[str], root: str | os.PathLike[str], *, allow_outside: bool = False) -> str:
    """The real absolute path of image ``value`` (relative paths are under ``root``).

    Raises :class:`PathEscapeError` unless the path, with ``..`` and every symlink
    resolved, lies inside ``root`` (itself resolved), or ``allow_outside`` is set; and
    :class:`NotRegularFileError` when it exists and is not a regular file (whatever
    ``allow_outside``). A missing file is left to the reader (its own error).
    """
    real_root = Path(os.path.realpath(root))
    path = Path(value)
    real = Path(os.path.realpath(path if path.is_absolute() else real_root / path))
    if not allow_outside and real != real_root and real_root not in real.parents:
        how = "absolute path" if path.is_absolute() else ("'..'" if ".." in path.parts else "symlink")
        raise PathEscapeError(f"image {str(value)!r} is outside the image root {real_root} ({how} to {real}; "
                              f"pass {ALLOW_FLAG} to allow it)")
    try:
        kind = _kind(os.stat(real).st_mode)
    except OSError:
        kind = None  # missing or unreadable: the reader says so
    if kind is not None:
        raise _not_regular(value, real, kind)
    return str(real)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a regular file's bytes. Opens without blocking, so a named pipe
    put in the file's place after :func:`confine` is refused (:class:`NotRegularFileError`)
    instead of waiting for a writer; ``OSError`` when the file cannot be read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise _not_regular(path, path, kind)
        h = hashlib.sha256()
        with os.fdopen(fd, "rb", closefd=False) as f:
            while block := f.read(chunk):
                h.update(block)
        return h.hexdigest()
    finally:
        os.close(fd)
