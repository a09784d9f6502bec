"""Files that are whole or absent: the one atomic writer of jaxlstm, directory fsync, and run-directory locks.

Every file jaxlstm writes (checkpoints, run files, predictions, figures, Keras exports) goes through
:func:`atomic_path`: the content is written to a hidden temporary file beside the destination, flushed and fsync'ed,
then ``os.replace`` renames it into place and the directory is fsync'ed, so a reader (or a crash) sees the old file
or the whole new one, never a part.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.txt", b"whole")
>>> (folder / "a.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
(b'whole', ['a.txt'])
"""

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from jaxlstm.errors import RunError

__all__ = ["RunLock", "atomic_path", "fsync_directory", "write_atomic"]


def _flock(fd: int, operation: int, *, patience: float) -> bool:
    """Takes the lock ``operation`` on ``fd`` without blocking, retrying for up to ``patience`` seconds (another
    process may hold it for an instant, e.g. while checking it); True when taken."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _pid(fd: int) -> str:
    """The PID a lock file holds, for messages."""
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


def fsync_directory(directory: Path) -> None:
    """Flushes a directory's entries (renames, new files) to disk; a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _file_mode(path: Path) -> int:
    """The permissions a new file gets from ``open`` (0o666 less the umask), or those of the file it replaces."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` (same suffix, so writers that choose a format by suffix work); when
    the block ends without an exception, the file written there is fsync'ed and renamed over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix="".join(path.suffixes), dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _file_mode(path))  # mkstemp's 0600 would otherwise make every file private
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_directory(path.parent)


def write_atomic(path: Path, content: bytes) -> None:
    """Writes ``content`` to ``path`` through :func:`atomic_path`: readers see the old file or the new one."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


class RunLock:
    """An exclusive lock on a run directory, held while one process writes it (``fcntl.flock`` on a lock file).

    The lock file ``.jaxlstm.lock`` (holding the owner's PID) lives in the run directory, which is created if
    needed; on release the file is removed, and so are the directories this lock created if nothing else was written
    in them. A second process asking for the same directory gets a :class:`~jaxlstm.errors.RunError` that
    names the holder, instead of mixing its files with the first one's.
    """

    NAME = ".jaxlstm.lock"

    def __init__(self, directory: Path, *, flag: str = "--out") -> None:
        self.directory = Path(directory)
        self.flag = flag
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> "RunLock":
        missing = self.directory
        while not missing.exists() and missing != missing.parent:
            self._created.append(missing)  # deepest first
            missing = missing.parent
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(
                f"{self.directory}: cannot create it ({error.strerror}); choose another {self.flag}"
            ) from None
        path = self.directory / self.NAME
        while True:  # a holder may remove the file between our open and our flock: then lock the new file
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the holder also removed the directory it had created
                self.directory.mkdir(parents=True, exist_ok=True)
                continue
            if not _flock(fd, fcntl.LOCK_EX, patience=0.5):
                holder = _pid(fd)
                os.close(fd)
                self._remove_created_directories()
                raise self.held_error(self.directory, holder, self.flag)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def held_error(directory: Path, holder: str, flag: str = "--out") -> RunError:
        """The error for a directory locked by the process ``holder``."""
        return RunError(
            f"{directory} is being written by another jaxlstm process (pid {holder}); wait for it to finish, "
            f"or choose another {flag}"
        )

    @classmethod
    def holder(cls, directory: Path) -> str | None:
        """The PID of the other process holding ``directory``'s lock, or None when none holds it (or this one does)."""
        try:
            fd = os.open(Path(directory) / cls.NAME, os.O_RDONLY)
        except OSError:
            return None
        try:
            holder = None if _flock(fd, fcntl.LOCK_SH, patience=0.0) else _pid(fd)
        finally:
            os.close(fd)  # releases the shared lock, if it was taken
        return None if holder == str(os.getpid()) else holder

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            (self.directory / self.NAME).unlink()
        os.close(self._fd)  # closing releases the flock
        self._fd = None
        self._remove_created_directories()

    def _remove_created_directories(self) -> None:
        """Removes the directories this lock created, deepest first, as long as they are empty."""
        for directory in self._created:
            try:
                directory.rmdir()
            except OSError:  # not empty: a run that wrote files keeps them
                return
