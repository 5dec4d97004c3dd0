"""Where a dataset's image paths may point: inside its image root (issue 21 item 4).

A dataset names its images by path; ``..``, an absolute path or a symlink can name any
file the user can read, and ``minio3 eval`` / ``coldstart`` send the images they read
to an endpoint. Every command that reads image paths from rows (``data convert``,
``data import-coldstart``, ``eval``, ``coldstart``) asks :func:`confine` here; the
one flag that lifts the rule is :data:`ALLOW_FLAG`.

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

import os
from pathlib import Path

__all__ = ["ALLOW_FLAG", "ALLOW_HELP", "PathEscapeError", "confine"]

#: The command-line flag that lets image paths leave the image root, in every command.
ALLOW_FLAG = "--allow-outside-root"
ALLOW_HELP = ("let image paths in the rows point outside the image root (absolute paths, '..', symlinks); "
              "by default such a row is refused, since its file would be read (and, in eval, sent to the endpoint)")


class PathEscapeError(ValueError):
    """An image path that leaves the image root; the message names the path, the root and the flag."""


def confine(value: str | os.PathLike[str], root: str | os.PathLike[str], *, allow_outside: bool = False) -> str:
    """The real absolute path of image ``value`` (relative paths are under ``root``).

    Raises :class:`PathEscapeError` unless the path, with ``..`` and every symlink
    resolved, lies inside ``root`` (itself resolved), or ``allow_outside`` is set.
    """
    real_root = Path(os.path.realpath(root))
    path = Path(value)
    real = Path(os.path.realpath(path if path.is_absolute() else real_root / path))
    if not allow_outside and real != real_root and real_root not in real.parents:
        how = "absolute path" if path.is_absolute() else ("'..'" if ".." in path.parts else "symlink")
        raise PathEscapeError(f"image {str(value)!r} is outside the image root {real_root} ({how} to {real}; "
                              f"pass {ALLOW_FLAG} to allow it)")
    return str(real)
