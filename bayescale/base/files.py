"""Writing files safely: one atomic write for every file the package writes, and a folder lock.

Every write (a saved fit, a figure, a checkpoint folder's fits and index)
goes through :func:`atomic_write`: the content is written to a hidden
temporary file in the target's folder (``.<name>.<8 hex>.tmp``), flushed to
disk and renamed over the target, so a reader never sees half a file and a
failed or killed save never replaces a good one. Beyond that:

- only regular files are replaced: a directory, character or block device
  (``/dev/null``), FIFO or socket at the path is refused with an error that
  names the path and what is there;
- a symlink is written *through*: its target gets the new content and the
  link stays a link;
- an existing file keeps its permission bits (and, where allowed, its
  owner); a new file gets what the user's umask gives (``0666 & ~umask``),
  as any other program's output would;
- hidden temporary files of killed saves (our own name pattern only, older
  than :data:`STALE_SECONDS`) are removed when the same file is saved again.

:func:`folder_lock` serialises the writers of one folder across processes
(an advisory ``fcntl`` lock on a hidden lock file in the folder).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from pathlib import Path

from .errors import FileWriteError

#: The netCDF engine fits are written and read with.
NETCDF_ENGINE = "h5netcdf"

__all__ = ["atomic_write", "check_write_path", "make_folder", "folder_lock", "remove_stale_temporaries", "STALE_SECONDS",
           "LOCK_NAME"]

#: A hidden temporary file older than this (seconds) is a leftover of a killed save and is removed.
STALE_SECONDS = 3600.0

#: Name of the lock file :func:`folder_lock` creates in a folder.
LOCK_NAME = ".bayescale.lock"

_TEMP = re.compile(r"^\..+\.[0-9a-z_]{8}\.tmp$")  # ours: ".<name>.<8 hex>.tmp" (older versions: 8 of [a-z0-9_])
_BASE_MAX = 200  # the temporary name stays under the usual 255-byte name limit

_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "special file"


def check_write_path(path, what: str = "file") -> tuple[Path, int | None]:
    """The file a write to `path` lands in, and its mode if it exists; or one clear error.

    Parameters
    ----------
    path : str or PathLike
        Where the user asked to write.
    what : str
        What is being written, for messages (``"fit"``, ``"figure"`` ...).

    Returns
    -------
    (Path, int or None)
        The regular file to replace (a symlink's target) and its permission
        bits, or ``None`` when it does not exist yet.

    Raises
    ------
    TypeError
        `path` is not a str or PathLike.
    ValueError
        `path` is empty or contains a NUL character.
    FileWriteError
        Something other than a regular file is at `path` (a directory,
        device, FIFO or socket), its folder is missing, or the file there is
        not writable by this process.

    Examples
    --------
    >>> check_write_path("")
    Traceback (most recent call last):
    ...
    ValueError: cannot write file to '': the path is empty; give a file name such as 'fit.nc'
    >>> check_write_path("/dev/null", "fit")
    Traceback (most recent call last):
    ...
    bayescale.base.errors.FileWriteError: cannot write fit to '/dev/null': it is a character device, not a regular file; give the path of a file to create or replace
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the path to write the {what} to must be a str or PathLike, got {type(path).__name__} "
                        f"{path!r}")
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise ValueError(f"cannot write {what} to '': the path is empty; give a file name such as 'fit.nc'")
    if "\0" in text:
        raise ValueError(f"cannot write {what} to {text!r}: the path contains a NUL character")
    where = f"cannot write {what} to {text!r}"
    target = Path(os.path.realpath(text)) if os.path.islink(text) else Path(text)
    via = f" (a symlink to {str(target)!r})" if target != Path(text) else ""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a symlink loop, a file used as a folder, a name too long ...
        raise FileWriteError(f"{where}: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise FileWriteError(f"{where}{via}: it is a {_kind(st.st_mode)}, not a regular file; give the path of a "
                             "file to create or replace")
    if text.endswith(("/", os.sep)) or target.name in ("", ".", ".."):
        raise FileWriteError(f"{where}: the path names a folder, not a file")
    folder = target.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise FileWriteError(f"{where}: folder {str(folder)!r} {state}")
    if st is not None and not os.access(target, os.W_OK):
        raise FileWriteError(f"{where}{via}: the file is not writable (mode {stat.S_IMODE(st.st_mode):o}); make it "
                             "writable (chmod u+w) or give another path")
    return target, (None if st is None else stat.S_IMODE(st.st_mode))


def atomic_write(path, write, what: str = "file", *, private: bool = False) -> Path:
    """Write a file through a hidden temporary file in its folder, then rename it over the target.

    Parameters
    ----------
    path : str or PathLike
        The file to create or replace. A symlink is written through (the
        link stays); anything but a regular file there is refused.
    write : callable
        ``write(tmp)`` writes the whole content to the path ``tmp`` (a str),
        e.g. ``lambda tmp: tree.to_netcdf(tmp)``.
    what : str
        What is written, for messages.
    private : bool, default False
        Create the file readable and writable by its owner only (0600), as a
        cache that trusts only its own entries needs; otherwise an existing
        file keeps its mode and a new one gets the umask's.

    Returns
    -------
    Path
        The file written (a symlink's target).

    Raises
    ------
    TypeError, ValueError, FileWriteError
        As :func:`check_write_path`; FileWriteError also when the folder is
        not writable or the write fails with an OSError. Every message names
        `path`, never the temporary file, which is removed on any failure.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> out = atomic_write(folder / "notes.txt", lambda tmp: pathlib.Path(tmp).write_text("hello"))
    >>> out.read_text(), [p.name for p in folder.iterdir()]
    ('hello', ['notes.txt'])
    """
    target, mode = check_write_path(path, what)
    where = f"cannot write {what} to {os.fspath(path)!r}"
    base = target.name[:_BASE_MAX]
    tmp = None
    for _ in range(100):
        candidate = target.parent / f".{base}.{secrets.token_hex(4)}.tmp"
        try:
            # 0o666 before the umask: a new file gets the mode any program's output gets
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            reason = "is not writable" if isinstance(exc, PermissionError) else "cannot hold a new file"
            raise FileWriteError(f"{where}: folder {str(target.parent)!r} {reason} "
                                 f"({exc.strerror or exc})") from None
        tmp = candidate
        break
    if tmp is None:
        raise FileWriteError(f"{where}: could not create a temporary file in {str(target.parent)!r}")
    try:
        try:
            if private:
                os.fchmod(fd, 0o600)
            elif mode is not None:
                os.fchmod(fd, mode)
                st = os.stat(target)
                with contextlib.suppress(OSError):  # keep the owner where we may (as root)
                    os.fchown(fd, st.st_uid, st.st_gid)
        finally:
            os.close(fd)
        write(str(tmp))
        with open(tmp, "rb") as fh:  # on disk before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError):
            reason = str(exc.strerror or exc).replace(str(tmp), os.fspath(path))  # the user's path, never ours
            raise FileWriteError(f"{where}: {reason}") from exc
        raise
    remove_stale_temporaries(target.parent, target.name)
    return target


def make_folder(path, what: str = "folder") -> Path:
    """The folder `path`, created (with its parents) when missing; or one clear error.

    Raises
    ------
    TypeError, ValueError
        `path` is not a path, is empty or contains a NUL character.
    FileWriteError
        Something other than a folder is at `path` (or at one of its
        parents), or the folder cannot be created.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "fits"
    >>> _ = file.write_text("not a folder")
    >>> make_folder(file, "checkpoint_dir")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.base.errors.FileWriteError: checkpoint_dir '...fits' is a regular file, not a folder; ...
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or PathLike, got {type(path).__name__} {path!r}")
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise ValueError(f"{what} is empty; give a folder name such as 'fits/'")
    if "\0" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    folder = Path(text)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise FileWriteError(f"{what} {text!r} cannot be created: a part of its path is a file, not a "
                             "folder") from None
    except OSError as exc:
        raise FileWriteError(f"{what} {text!r} cannot be used: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        kind = "regular file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
        raise FileWriteError(f"{what} {text!r} is a {kind}, not a folder; give a folder to hold the fits")
    if st is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a parent is a file, permission denied ...
            raise FileWriteError(f"{what} {text!r} cannot be created: {exc.strerror or exc}") from None
    return folder


def remove_stale_temporaries(folder, name: str | None = None, older_than: float = STALE_SECONDS) -> list:
    """Remove hidden temporary files of killed saves from `folder`; return their names.

    Only regular files named like ours (``.<name>.<8 characters>.tmp``; with
    `name`, only those of that file) and not modified for `older_than`
    seconds are removed: a save still in progress in another process keeps
    its file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> old = folder / ".fit.nc.0a1b2c3d.tmp"
    >>> _ = old.write_bytes(b"half a fit")
    >>> os.utime(old, (0, 0))
    >>> remove_stale_temporaries(folder)
    ['.fit.nc.0a1b2c3d.tmp']
    """
    prefix = None if name is None else f".{name[:_BASE_MAX]}."
    cutoff = time.time() - older_than
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP.match(entry.name) or (prefix is not None and not entry.name.startswith(prefix)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                os.remove(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return sorted(removed)


@contextlib.contextmanager
def folder_lock(folder, name=None):
    """Hold an exclusive advisory lock on `folder` (a ``.bayescale.lock`` file in it) across processes.

    `name` locks one thing in the folder instead (a lock file of that name), so that holders of
    different names do not wait for each other. The lock file is never a link (``O_NOFOLLOW``).

    Writers that read, merge and rewrite a shared file in the folder (the
    checkpoint index of :func:`bayescale.fit_many`) do it inside this lock,
    so two processes never overwrite each other's entries. Where ``fcntl``
    is missing (Windows) the block runs unlocked.

    Examples
    --------
    >>> import tempfile
    >>> with folder_lock(tempfile.mkdtemp()):
    ...     pass
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(folder) / (name or LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
    except OSError as exc:
        raise FileWriteError(f"cannot lock folder {str(folder)!r}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
