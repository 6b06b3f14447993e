"""Is the process that wrote a "running" record still there to finish it?"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from trainer.store.record import RunRecord

STALE_OTHER_HOST = timedelta(hours=24)  # "running" on another host, silent this long → dead


def host_name() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True when `pid` runs on this host (zombies count as dead: they will never write again)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rfind(b")") + 2:][:1] != b"Z"
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists


def _parse_time(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.astimezone()


def writer_gone(record: RunRecord) -> bool:
    """Whether a "running" record's worker can no longer finish it."""
    host, pid = record.env.host, record.env.worker_pid
    if not host or pid is None:
        return True  # never got as far as RunStarted in a worker that could update it
    if host == host_name():
        return not pid_alive(pid)
    updated = _parse_time(record.updated)
    return updated is None or datetime.now().astimezone() - updated > STALE_OTHER_HOST
