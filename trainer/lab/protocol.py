"""What lab and clients say to each other over the authenticated socket.

Messages are pickled by `multiprocessing.connection`, whose handshake proves the secret key
first: only the user who owns the key file gets as far as unpickling. A connection starts with
Hello → Welcome (the whole current state) or Refused (another protocol version, with what to
do); then the client sends Commands and gets Replies, while the lab pushes every event batch
with the queue as it stands after it, to every client alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainer.events import Event, Progress, RunRequest
from trainer.store.record import RunRecord

PROTOCOL = 1
COMMANDS = ("submit", "stop", "cancel_queued", "cancel", "resume", "status", "shutdown")


@dataclass(frozen=True)
class Hello:
    protocol: int
    client: str  # "tui", "run", "status": shown by `cnn-tui lab status`
    pid: int


@dataclass(frozen=True)
class QueueState:
    """The queue after a change: waiting runs (next first), running runs with their device."""

    pending: tuple[RunRequest, ...] = ()
    running: tuple[tuple[RunRequest, str], ...] = ()
    held: bool = False  # waiting for a decision (a data failure, a queue left by a dead lab)


@dataclass(frozen=True)
class Snapshot:
    """Everything a new client needs to show the lab as if it had never been away."""

    records: tuple[RunRecord, ...]  # every run this lab has queued or run
    progress: tuple[Progress, ...]
    queue: QueueState
    devices: tuple[str, ...]
    lab_pid: int
    started: str
    clients: tuple[str, ...] = ()
    recovered: str = ""  # what a previous lab that died left behind, in words


@dataclass(frozen=True)
class Welcome:
    protocol: int
    snapshot: Snapshot


@dataclass(frozen=True)
class Refused:
    protocol: int
    message: str


@dataclass(frozen=True)
class Command:
    id: int
    name: str  # one of COMMANDS
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    id: int
    ok: bool
    value: Any = None
    error: str = ""


@dataclass(frozen=True)
class Push:
    events: tuple[Event, ...]
    queue: QueueState
