"""`cnn-tui lab status|stop|resume|cancel` (and the hidden `serve` the clients start).

Which trainer a client uses is decided here too: the lab (default), or with `CNN_TUI_LAB=off`
a worker of its own that ends with the command, as before the lab existed (for a sandbox
without Unix sockets, or a debugger).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainer import formats as fmt
from trainer.cli.output import EXIT_FAILED, EXIT_OK, console_err, console_out, runs_dir
from trainer.events import WorkerSettings
from trainer.host.session import TrainerHandle
from trainer.lab.place import LabError, LabPlace
from trainer.lab.protocol import Snapshot
from trainer.store.record import RunStatus

STOP_WAIT_S = 15.0


def lab_enabled() -> bool:
    return os.environ.get("CNN_TUI_LAB", "on").strip().lower() not in ("off", "0", "no")


def make_trainer(settings: WorkerSettings, client: str, devices: str | None) -> TrainerHandle:
    """The lab's client (starting the lab if needed), or a private worker when it is off."""
    if lab_enabled():
        from trainer.lab.client import LabClient

        return LabClient.connect(str(settings.runs_dir), client, settings, devices)
    from trainer.host.process import TrainerProcess

    return TrainerProcess(settings)


def cmd_lab(args: argparse.Namespace) -> int:
    folder = runs_dir(args)
    if args.action == "serve":
        return _serve(args, folder)
    from trainer.lab.client import LabClient

    console, err = console_out(), console_err()
    place = LabPlace.for_runs(folder)
    try:
        client = LabClient.connect(str(folder), f"lab {args.action}", start=False)
    except LabError as exc:
        if args.action == "stop" and "another version" in str(exc):
            return _terminate(place, place.pid(), console)
        if "no lab is running" in str(exc):
            console.print(Text(f"no lab is running for {folder}"))
            return EXIT_OK
        raise
    try:
        if args.action == "status":
            show_status(client.status(), console)
            return EXIT_OK
        if args.action == "resume":
            client.resume()
            console.print(Text(f"resumed: {len(client.pending())} waiting run(s) will train"))
            return EXIT_OK
        if args.action == "cancel":
            dropped = client.cancel_queued()
            console.print(Text(f"cancelled {len(dropped)} waiting run(s)"))
            return EXIT_OK
        snap = client.status()
        busy = bool(snap.queue.pending or snap.queue.running)
        if busy and not args.force:
            n = len(snap.queue.running)
            question = (f"{n} run(s) are training and {len(snap.queue.pending)} waiting; "
                        "stop them and the lab? [y/N] ")
            if not (sys.stdin.isatty() and input(question).strip().lower() in ("y", "yes")):
                err.print(Text("the lab keeps running (use 'cnn-tui lab stop --force' to stop "
                               "it with its runs)"))
                return EXIT_FAILED
        client.stop_lab(force=True)
    finally:
        client.shutdown()
    return _wait_gone(place, snap.lab_pid, console)


def _wait_gone(place: LabPlace, pid: int | None, console: Console) -> int:
    from trainer.store.liveness import pid_alive

    deadline = time.monotonic() + STOP_WAIT_S
    while pid and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid and pid_alive(pid):
        console.print(Text(f"the lab (pid {pid}) is still stopping its runs; it ends within "
                           "a batch"))
        return EXIT_FAILED
    console.print(Text(f"lab stopped ({place.runs_dir})"))
    return EXIT_OK


def _terminate(place: LabPlace, pid: int | None, console: Console) -> int:
    """A lab we cannot talk to (another version): SIGTERM makes it stop its runs and go."""
    if pid is None:
        console.print(Text("no lab pid file; nothing to stop"))
        return EXIT_FAILED
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return _wait_gone(place, pid, console)


def _serve(args: argparse.Namespace, folder: Path) -> int:
    from trainer.lab.service import IDLE_EXIT_S, devices_from, serve, visible_cuda_devices

    device = args.device or "auto"
    listed = args.devices or os.environ.get("CNN_TUI_DEVICES")
    devices = devices_from(listed, device)
    if not listed and device in ("auto", "cuda"):
        devices = visible_cuda_devices() or devices
    settings = WorkerSettings(runs_dir=str(folder.expanduser().resolve()),
                              data_dir=args.data_dir, device=device,
                              log_path=str(folder.expanduser().resolve() / "worker.log"))
    folder.mkdir(parents=True, exist_ok=True)
    return serve(LabPlace.for_runs(folder), settings, devices, IDLE_EXIT_S)


def show_status(snap: Snapshot, console: Console) -> None:
    """The lab, its devices and clients, the runs in progress and the queue."""
    n_wait = len(snap.queue.pending)
    console.print(Text(f"lab pid {snap.lab_pid} · since {snap.started} · devices "
                       f"{', '.join(snap.devices)} · {len(snap.clients)} client(s)"
                       + (f" ({', '.join(snap.clients)})" if snap.clients else "")))
    if snap.recovered:
        console.print(Text(f"note: {snap.recovered}", style="yellow"))
    records = {r.run_id: r for r in snap.records}
    progress = {p.run_id: p for p in snap.progress}
    table = Table(title="training", title_justify="left", show_edge=False)
    for col in ("run id", "lesson", "variant", "rep", "device", "epoch", "img/s"):
        table.add_column(col)
    for req, device in snap.queue.running:
        rec = records.get(req.run_id)
        prog = progress.get(req.run_id)
        epochs = req.config.get("epochs", "?")
        epoch = f"{prog.epoch}/{epochs}" if prog else f"–/{epochs}"
        table.add_row(req.run_id, req.preset, req.variant, str(req.repeat + 1),
                      (rec.env.device if rec and rec.env.device else device), epoch,
                      fmt.rate(prog.images_per_s if prog else None))
    if snap.queue.running:
        console.print(table)
    else:
        console.print(Text("training: nothing"))
    held = " (held: 'cnn-tui lab resume' goes on, 'cnn-tui lab cancel' drops them)" \
        if snap.queue.held and n_wait else ""
    console.print(Text(f"waiting: {n_wait} run(s){held}"))
    for req in snap.queue.pending[:10]:
        console.print(Text(f"  {req.run_id}  {req.preset} · {req.variant} · rep "
                           f"{req.repeat + 1}"))
    if n_wait > 10:
        console.print(Text(f"  … and {n_wait - 10} more"))
    done = sum(1 for r in snap.records if r.status is RunStatus.FINISHED)
    console.print(Text(f"this lab has finished {done} run(s)"))
