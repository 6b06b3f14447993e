"""`cnn-tui` entry point: parse the shared options (trainer.cli), then open the app.

The trainer handle is made here, before `App.run()`: the lab's client (the lab starts,
detached, if none serves this runs folder), or with CNN_TUI_LAB=off a TrainerProcess of our
own, whose pipes and resource tracker cannot be set up once Textual has swapped stderr.
Worker output goes to `<runs_dir>/worker.log` so it never scribbles over the screen.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from trainer import paths


def launch(args: argparse.Namespace) -> int:
    """Open the TUI with the options `trainer.cli` parsed (same as `cnn-tui run`)."""
    # Until the first frame, Python's cyclic collector would walk the tens of thousands of
    # objects the start creates (Textual's modules, stylesheets, widgets), all of which
    # live as long as the app: ~10% of the time to the first frame, for nothing. The app
    # freezes them and turns collection back on once the first frame is out.
    gc.disable()
    from trainer.cli.lab import make_trainer
    from trainer.cli.parser import presets_dirs, resolve_overrides
    from trainer.events import WorkerSettings
    from trainer.lab.place import LabError
    from tui.app import CnnTuiApp, StartOptions

    runs_dir = Path(args.runs_dir).expanduser() if args.runs_dir else paths.runs_dir()
    options = StartOptions(
        runs_dir=runs_dir,
        data_dir=args.data_dir,
        device=args.device or "auto",
        presets_dirs=presets_dirs(args),
        overrides=resolve_overrides(args),
    )
    log_path = None
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        log_path = str(runs_dir / "worker.log")
    except OSError as err:
        print(f"cnn-tui: cannot create the runs folder {runs_dir}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    settings = WorkerSettings(runs_dir=str(runs_dir), data_dir=args.data_dir,
                              device=options.device, log_path=log_path)
    try:
        trainer = make_trainer(settings, "tui", getattr(args, "devices", None))
    except LabError as err:
        print(f"cnn-tui: lab: {err}", file=sys.stderr)
        return 1
    try:
        app = CnnTuiApp(trainer, options)
        app.run()
    finally:
        trainer.shutdown()
    return int(app.return_code or 0)


def main() -> int:
    """Console script `cnn-tui`."""
    from trainer.cli.main import main as cli_main

    return cli_main(sys.argv[1:], launch_tui=launch)


if __name__ == "__main__":
    sys.exit(main())
