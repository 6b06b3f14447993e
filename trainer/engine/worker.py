"""The trainer process: trains one requested run at a time and reports events.

It runs in a spawn-context child (never fork: CUDA does not survive a fork, and the parent may
be a Textual app with threads). torch, the data and the loop are imported only inside the
child (`_Worker`), and the parent names this module by string (`trainer.host.spawn`).

The worker persists every run itself (`RunReporter`: `apply_event`, then `RunStore.save`)
before it reports an event, so the store is right even if the parent vanishes; the parent's
job is only to show events and to notice when this process dies.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from trainer.config import ConfigError, RunConfig
from trainer.engine.faults import Fault
from trainer.engine.reporter import RunReporter, log, set_verbose
from trainer.events import Event, Notice, Preparing, RunFailed, RunRequest, WorkerSettings
from trainer.store import rowcache
from trainer.store.liveness import host_name
from trainer.store.record import RunEnv
from trainer.store.runstore import RunStore
from trainer.text import first_line

LOG_MAX_BYTES = 5_000_000  # rotate the worker log once it grows past this
DATASETS_KEPT = 2  # datasets kept on the device across runs (CIFAR-10 is ~180 MB)
MESSAGE_MAX = 300  # one-line failure messages are cut here; the store keeps the traceback


class _DeviceError(Exception):
    pass


@dataclass
class _Job:
    """One run the worker trains: its request, its reporter, its stop check."""

    request: RunRequest
    report: RunReporter
    should_stop: Callable[[], bool]


def worker_main(requests: Connection, events: Connection, stop_flag: Any,
                settings: WorkerSettings, run_flags: Any = None) -> None:
    """Entry point of the child: serve requests until None, EOF or the parent's death.

    `requests` yields a RunRequest, or a list of them to train together (None = shut down);
    `events` carries events back; `stop_flag.value` non-zero asks the current run(s) to stop,
    `run_flags[i]` non-zero the i-th run of a list only (both checked every batch).
    """
    # Ctrl-C reaches the whole foreground process group; the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if settings.log_path:
        _redirect_output(settings.log_path)
        set_verbose(True)
    faulthandler.enable()  # a segfault in a native library leaves a trace in the log
    _watch_parent()
    sender = _Sender(events)
    try:
        worker = _Worker(settings, sender, stop_flag, run_flags)
        while True:
            try:
                request = requests.recv()
            except (EOFError, OSError):
                break  # parent closed its end: nobody left to train for
            if request is None:
                break
            batch = request if isinstance(request, list) else [request]
            try:
                worker.run(batch)
            except Exception as exc:  # a bug in reporting itself: still end the runs visibly
                log(f"internal error in run {batch[0].run_id}:\n{traceback.format_exc()}",
                     always=True)
                ended = {r.run_id for r in worker.reporters if r.terminal}
                for req in batch:
                    if req.run_id not in ended:
                        sender.put(RunFailed(run_id=req.run_id, kind="error",
                                             message=f"internal error: {type(exc).__name__}: "
                                             f"{exc}", traceback=traceback.format_exc()))
    finally:
        sender.close(timeout=2.0)
        log("worker exiting")
    # Everything that matters is saved (fsynced records) and sent. Skip the interpreter's
    # teardown of torch, which can take a second: a quitting app waits for this exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _redirect_output(log_path: str) -> None:
    """Point fds 1 and 2 at the log, so prints, warnings and native-library messages from this
    process never draw over the TUI."""
    path = Path(log_path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)  # silence beats a garbled screen
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(AttributeError, ValueError):
        # (TextIO has no reconfigure; the real streams are TextIOWrapper, AttributeError else.)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def _watch_parent() -> None:
    """Exit within moments of the parent's death (kill -9, SIGHUP of a dropped SSH session).

    The parent's sentinel becomes readable when it dies; a daemon thread waits on it because
    the main thread is busy training. The run's record stays "running" and the next
    RunStore.load() marks it interrupted, keeping the finished epochs.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        log("parent process is gone; exiting")
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _Sender:
    """Sends events from a background thread so training never waits on a busy parent."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
        self._thread.start()

    def put(self, event: Event) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._conn.send(event)
            except (OSError, EOFError):
                return  # parent gone: the watcher thread ends this process

    def close(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


def _thread_count() -> int:
    """Use the cores we may run on, leaving one to the UI on machines with more than four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores if cores <= 4 else cores - 1)


class _Worker:
    """State kept across runs: torch, the resolved device and decoded datasets."""

    def __init__(self, settings: WorkerSettings, sender: _Sender, stop_flag: Any,
                 run_flags: Any = None) -> None:
        self.settings = settings
        self.sender = sender
        self.stop_flag = stop_flag
        self.run_flags = run_flags
        self.store = RunStore(settings.runs_dir)
        self.datasets: dict[tuple[str, str | None], Any] = {}
        self.import_error = ""
        self.torch: Any = None
        self.reporters: list[RunReporter] = []  # the run(s) in progress
        self.fault = Fault.from_env()
        try:
            import torch

            from trainer.engine import data, grouped, loop
        except Exception as exc:  # a broken install: fail each run with the reason, stay up
            self.import_error = f"could not import the training code: {type(exc).__name__}: {exc}"
            log(self.import_error + "\n" + traceback.format_exc(), always=True)
            return
        self.torch, self.data, self.loop, self.grouped = torch, data, loop, grouped
        if "OMP_NUM_THREADS" not in os.environ:  # an explicit user choice wins
            torch.set_num_threads(_thread_count())
        log(f"ready: torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"cuda {'available' if torch.cuda.is_available() else 'not available'}")

    # -- one run, or runs trained together -------------------------------------------------
    def stopper(self, slot: int) -> Callable[[], bool]:
        """should_stop of the run in position `slot` of the current list."""
        flags = self.run_flags
        if flags is None or slot >= len(flags):
            return lambda: bool(self.stop_flag.value)
        return lambda: bool(self.stop_flag.value or flags[slot])

    def run(self, requests: list[RunRequest]) -> None:
        """Train the runs: together when the parent sent several and this device groups
        them (see `together`), else one after another."""
        reports = self.reporters = [
            RunReporter(self.store, self.sender.put, req, self.env_guess(), background=True)
            for req in requests]
        try:
            jobs = [_Job(req, rep, self.stopper(i))
                    for i, (req, rep) in enumerate(zip(requests, reports, strict=True))
                    if self.check(req, rep)]
            if len(jobs) > 1 and self.together():
                self.train(jobs)
            else:
                for job in jobs:
                    self.train([job])
        finally:
            for report in reports:
                report.close()  # every epoch saved and sent before the next run starts
                if not report.unsaved:
                    rowcache.remember(self.store, report.run_id)

    def together(self) -> bool:
        """Whether a list of runs trains as one wide model here: by default on CUDA only
        (on a CPU a wide step costs as much as its runs alone)."""
        mode = self.settings.group or "auto"
        if mode == "auto":
            with contextlib.suppress(_DeviceError):
                return bool(self.resolve_device().type == "cuda")
            return False
        return mode == "on"

    def check(self, request: RunRequest, report: RunReporter) -> bool:
        """Can this run start at all? If not, it fails now with the reason."""
        log(f"run {request.run_id} ({request.preset}/{request.variant} #{request.repeat})")
        if self.import_error:
            report.fail("error", self.import_error)
            return False
        try:
            RunConfig.from_dict(request.config)
        except ConfigError as exc:
            report.fail("config", exc.message)
            return False
        except (TypeError, ValueError, AttributeError) as exc:
            report.fail("config", f"invalid run config: {exc}")
            return False
        return True

    def train(self, jobs: list[_Job]) -> None:
        """Train one run, or several together; a group that runs out of memory is split in
        halves and tried again (and at last each run alone)."""
        cfg = RunConfig.from_dict(jobs[0].request.config)
        device = None
        failure: tuple[str, str, str] | None = None
        loaded = False
        try:
            device = self.resolve_device()
            source = self.device_data(cfg, device, jobs[0].report)
            loaded = True
            emits = [self.emitter(job.report) for job in jobs]
            graphed = self.settings.cuda_graphs.strip().lower() != "off"  # else auto: on CUDA
            if len(jobs) == 1:
                self.loop.train(jobs[0].request, source, device, emits[0], jobs[0].should_stop,
                                cuda_graphs=graphed)
            else:
                self.grouped.train_group([j.request for j in jobs], source, device, emits,
                                         [j.should_stop for j in jobs], cuda_graphs=graphed)
        except _DeviceError as exc:
            failure = ("config", str(exc), "")
        except Exception as exc:
            if isinstance(exc, self.data.DataError):  # the user can fix it: full fix-it text
                # Loading failed: the dataset itself is missing/broken ("data", and every run
                # on it would fail alike). After loading: this run's settings do not fit the
                # data, e.g. a train_subset too small to split ("config").
                kind = "config" if loaded else "data"
                failure = (kind, exc.message, "".join(traceback.format_exception(exc)))
            else:
                failure = self.classify(exc, cfg, device)
            # Tracebacks keep every frame alive, and with them the model and optimizer
            # tensors: clear them so the memory is really free for the next run.
            traceback.clear_frames(exc.__traceback__)
            retry = [j for j in jobs if not j.report.terminal]
            if failure[0] == "out_of_memory" and len(retry) > 1:
                self.release_memory(device)
                log(f"out of memory with {len(retry)} runs together: trying them in halves")
                half = len(retry) // 2
                self.train(retry[:half])
                self.train(retry[half:])
                return
        for job in jobs:
            self.settle(job, failure, device)

    def emitter(self, report: RunReporter) -> Callable[[Event], None]:
        if self.fault is not None:
            return self.fault.wrap(report, self.torch, self.store.dir)
        return report.emit

    def settle(self, job: _Job, failure: tuple[str, str, str] | None, device: Any) -> None:
        """The end of a run's training: fail it with `failure`, unless it already ended."""
        report, run_id = job.report, job.request.run_id
        if failure is not None:
            kind, message, tb = failure
            if report.terminal:  # the loop already reported the result; just log the error
                log(f"error after the end of run {run_id}:\n{tb}")
            else:
                report.fail(kind, message, tb)
            self.release_memory(device)
        elif not report.terminal:
            report.fail("error", "training ended without reporting a result")
        status = report.record.status.value if report.record else "?"
        log(f"run {run_id} done: {status}")

    def env_guess(self) -> RunEnv:
        """What a record gets as "env" when the run fails before the loop reports RunStarted."""
        return RunEnv(device=str(self.settings.device),
                      torch=str(getattr(self.torch, "__version__", "")),
                      python=sys.version.split()[0], host=host_name(), worker_pid=os.getpid())

    def classify(self, exc: BaseException, cfg: RunConfig, device: Any) -> tuple[str, str, str]:
        tb = "".join(traceback.format_exception(exc))
        if self.is_oom(exc):
            where = str(device) if device is not None else "this device"
            return ("out_of_memory", f"out of memory on {where} — try a smaller batch_size "
                    f"(was {cfg.batch_size})", tb)
        text = first_line(str(exc))
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if len(message) > MESSAGE_MAX:
            message = message[: MESSAGE_MAX - 1] + "…"
        return ("error", message, tb)

    def is_oom(self, exc: BaseException) -> bool:
        if isinstance(exc, MemoryError):
            return True
        oom = getattr(self.torch.cuda, "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
        text = str(exc).lower()
        # CUDA says "out of memory"; PyTorch's CPU allocator says "can't allocate memory".
        return isinstance(exc, RuntimeError) and (
            "out of memory" in text or "can't allocate memory" in text)

    def release_memory(self, device: Any) -> None:
        """After a failure, hand cached GPU blocks back so the next run starts clean."""
        gc.collect()
        if device is not None and getattr(device, "type", "") == "cuda":
            with contextlib.suppress(Exception):
                self.torch.cuda.empty_cache()

    def resolve_device(self) -> Any:
        torch = self.torch
        name = (self.settings.device or "auto").strip().lower()
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise _DeviceError(f"unknown device '{name}' — use auto, cpu or cuda") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise _DeviceError(
                    f"device '{name}' was asked for but CUDA is not available to PyTorch "
                    f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) — "
                    "use --device auto or cpu")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise _DeviceError(f"device '{name}' does not exist: "
                                   f"{torch.cuda.device_count()} GPU(s) visible")
        elif device.type != "cpu":
            raise _DeviceError(f"device '{name}' is not supported — use auto, cpu or cuda")
        return device

    def device_data(self, cfg: RunConfig, device: Any, report: RunReporter) -> Any:
        """The dataset decoded and on the device, kept across runs (a lesson trains many
        runs on the same data: it is loaded, and copied to the device, once)."""
        key = (cfg.dataset, self.settings.data_dir)
        if key in self.datasets:
            return self.datasets[key]

        def notify(message: str) -> None:
            report.emit(Notice(message=message, level="info", run_id=report.run_id))

        last = [0.0]

        def stage(what: str, fraction: float) -> None:
            now = time.monotonic()  # at most ~10 a second: a status, not a flood
            if fraction <= 0 or now - last[0] >= 0.1:
                last[0] = now
                report.emit(Preparing(report.run_id, what, fraction))

        stage("loading the dataset", -1.0)
        raw = self.data.load_raw(cfg.dataset, self.settings.data_dir, notify=notify,
                                 stage=stage)
        while len(self.datasets) >= DATASETS_KEPT:
            self.datasets.pop(next(iter(self.datasets)))
        if device.type != "cpu":
            stage(f"copying the dataset to {device}", -1.0)
        source = self.datasets[key] = self.data.DeviceData(raw, device)
        return source


