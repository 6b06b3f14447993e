"""Where a lab lives, and the checks that keep it private on a shared machine.

One lab serves one runs folder. Its files sit in a per-user directory (mode 0700) named in
`lab_root()`: the socket (0600), the secret key every connection must prove (0600), the pid
file, the lock a running lab holds, its log, and the queue on disk. The lab refuses to start
— and clients refuse to connect — when that directory belongs to someone else or is open to
the group or the world: anyone who can reach the socket and key can submit work and read runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from trainer import paths

KEY_BYTES = 32


class LabError(Exception):
    """The lab cannot be used (unsafe directory, another version, not reachable): one line
    that says what to do."""


def lab_root() -> Path:
    """`CNN_TUI_LAB_DIR`, else `$XDG_RUNTIME_DIR/cnn-tui` (per-user, 0700 by design), else a
    `lab` folder in the per-user state."""
    env = os.environ.get("CNN_TUI_LAB_DIR")
    if env:
        return Path(env).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and not os.environ.get("CNN_TUI_HOME"):
        return Path(runtime) / "cnn-tui"
    return paths.state_dir() / "lab"


@dataclass(frozen=True)
class LabPlace:
    """The files of the lab that serves one runs folder."""

    root: Path
    runs_dir: Path

    @classmethod
    def for_runs(cls, runs_dir: Path | str) -> LabPlace:
        return cls(lab_root(), Path(runs_dir).expanduser().resolve())

    @property
    def name(self) -> str:
        # Unix socket paths are short (108 bytes): a digest of the folder, not the folder.
        return "lab-" + hashlib.sha256(str(self.runs_dir).encode()).hexdigest()[:12]

    def _file(self, suffix: str) -> Path:
        return self.root / f"{self.name}.{suffix}"

    @property
    def socket(self) -> Path:
        path = self._file("sock")
        if len(os.fsencode(path)) > 100:  # AF_UNIX paths are limited to about 108 bytes
            raise LabError(f"the lab socket path {path} is too long for a Unix socket; set "
                           "CNN_TUI_LAB_DIR to a shorter private folder")
        return path

    @property
    def key_file(self) -> Path:
        return self._file("key")

    @property
    def pid_file(self) -> Path:
        return self._file("pid")

    @property
    def lock_file(self) -> Path:
        return self._file("lock")

    @property
    def log_file(self) -> Path:
        return self._file("log")

    @property
    def queue_file(self) -> Path:
        return self._file("queue.json")

    def pid(self) -> int | None:
        """The pid the running (or last, if it died) lab wrote; None without a pid file."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None

    def prepare(self) -> None:
        """Create the directory (0700) if needed and check it is ours alone."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise LabError(f"cannot create the lab directory {self.root}: "
                           f"{exc.strerror or exc}") from None
        check_private_dir(self.root)

    def key(self, create: bool = False) -> bytes:
        """The secret every connection proves; made (0600) by the lab that starts first."""
        path = self.key_file
        if create and not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_hex(KEY_BYTES).encode())
            finally:
                os.close(fd)
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise LabError(f"no lab key at {path} (is a lab running?)") from None
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & 0o077:
            raise LabError(f"the lab key {path} is not a private file of yours (mode "
                           f"{stat.S_IMODE(info.st_mode):o}); remove it and start again")
        return path.read_bytes().strip()


def check_private_dir(path: Path) -> None:
    """LabError with the fix when `path` is not a directory owned by us with mode 0700."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise LabError(f"cannot use the lab directory {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise LabError(f"the lab directory {path} is not a directory; remove it or set "
                       "CNN_TUI_LAB_DIR to a private folder")
    if info.st_uid != os.getuid():
        raise LabError(f"the lab directory {path} belongs to another user (uid "
                       f"{info.st_uid}); set CNN_TUI_LAB_DIR to a folder of your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise LabError(f"the lab directory {path} is open to other users (mode {mode:o}); "
                       f"fix it with: chmod 700 {path}")
