"""The spawn target of the trainer process, named without importing the engine.

The parent (TUI, CLI, lab) must never load the engine, whose modules pull in torch. A spawn
child unpickles its target by module and name, so this tiny function is what the parent
hands over; the child, and only the child, imports `trainer.engine.worker` and runs it.
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINE = "trainer.engine.worker"


def worker_entry(*args: Any) -> None:
    """Runs in the child: `trainer.engine.worker.worker_main(*args)`."""
    importlib.import_module(ENGINE).worker_main(*args)
