"""Writing a file whole or not at all: the one helper every writer of graphattn uses.

The temporary file is ``.NAME.tmp-PID-XXXXXXXX`` beside the target ``NAME``:
hidden, and ending in neither the target's suffix nor any other, so no glob
for the real files (``*.npz``, ``*.png``) ever matches it. A writer killed
mid-write leaves its temporary file behind; the next write to the same target
removes those whose process no longer runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "temp_name"]


def temp_name(path: Path, pid: int | None = None) -> Path:
    """The temporary file beside ``path`` that this process writes before renaming.

    Examples
    --------
    >>> name = temp_name(Path("out/results.npz"), pid=42).name
    >>> name.startswith(".results.npz.tmp-42-"), name.endswith(".npz")
    (True, False)
    """
    pid = os.getpid() if pid is None else pid
    return path.with_name(f".{path.name}.tmp-{pid}-{secrets.token_hex(4)}")


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temps(path: Path) -> None:
    """Remove temporary files of ``path`` left by writers that no longer run."""
    prefix = f".{path.name}.tmp-"
    for tmp in path.parent.glob(f"{prefix}*"):
        pid = tmp.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable where the system allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then move it into place.

    The temporary file gets the permissions of a plainly created file, is
    flushed to disk (``fsync``) before the rename (the folder after it) and removed if ``write``
    fails, so ``path`` is either the complete new file or untouched.
    ``write`` must write to exactly the path it is given (pass an open file
    to writers that append a suffix, like ``numpy.savez``). An ``OSError``
    names ``path``, not the temporary file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(pathlib.Path(d) / "a.txt", lambda tmp: tmp.write_text("hi"))
    ...     p.read_text(), sorted(q.name for q in p.parent.iterdir())
    ('hi', ['a.txt'])
    """
    path = Path(path)
    tmp = temp_name(path)
    umask = os.umask(0)
    os.umask(umask)
    try:
        _remove_stale_temps(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions of a plainly created file
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None or str(err.filename) == str(path):
            raise
        raise type(err)(err.errno, f"cannot write {path}: {err.strerror}", str(path)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
