"""Messages between the UI/CLI and the trainer process.

Plain, picklable dataclasses of Python scalars (never tensors), so they cross
the spawn-context pipes cheaply and the TUI can import them without torch.
Flow: WorkerSettings and RunRequest go down to the worker; events come back up.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any


def new_run_id() -> str:
    """Sortable, unique, filename-safe: ``20261122-221503-3fa2c1``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


DEVICE_KINDS = ("auto", "cpu", "cuda")  # and cuda:N


def check_device(text: str) -> str:
    """A device name as the worker takes it: auto, cpu, cuda or cuda:N (lower-cased);
    ValueError with what is allowed otherwise (the CLI and the lab's device list share it)."""
    value = text.strip().lower()
    kind, colon, index = value.partition(":")
    if value in DEVICE_KINDS or (kind == "cuda" and colon and index.isdigit()):
        return value
    raise ValueError(f"invalid device {text!r} (use auto, cpu, cuda or cuda:N)")


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker needs to know; plain strings because it crosses spawn."""

    runs_dir: str | None = None  # None: the per-user runs dir (TrainerProcess fills it in)
    data_dir: str | None = None  # None: the usual places (see trainer.locate)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    log_path: str | None = None  # the TUI owns the terminal: worker output goes here
    # Repeats that differ only in their seed train as one wide model (trainer.engine.grouped):
    # "auto" = on CUDA only, "on" = everywhere (tests), "off"; "" = $CNN_TUI_GROUP, else auto.
    group: str = ""
    # Capture the training step as a CUDA graph (CUDA only): "auto" (= "on") | "off";
    # "" = $CNN_TUI_CUDA_GRAPHS, else auto. Not a lesson variable: it changes speed, not
    # results, so it is a worker setting.
    cuda_graphs: str = ""


@dataclass(frozen=True)
class RunRequest:
    """One run to train: a full config plus where it came from."""

    config: dict[str, Any]  # RunConfig.to_dict()
    preset: str = "custom"
    variant: str = ""
    repeat: int = 0
    group: str = ""  # one lesson launch: all its variants × repeats share it
    run_id: str = field(default_factory=new_run_id)


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    config: dict[str, Any]
    preset: str
    variant: str
    repeat: int
    group: str
    device: str  # where it trains: "cpu", "cuda" or "cuda:N"
    device_name: str  # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    torch_version: str
    params: int
    steps_per_epoch: int
    train_size: int
    val_size: int
    test_size: int
    dataset_note: str = ""  # e.g. "synthetic (not CIFAR-10)" or a checksum warning
    trained_together: int = 1  # runs (this one included) trained as one wide model
    cuda_graph: bool = False  # its training step ran as a captured CUDA graph


@dataclass(frozen=True)
class Preparing:
    """What a run waits for before (and just after) it starts, so no wait is silent:
    "loading the dataset", "decoding CIFAR-10" (with `fraction`), "building the model",
    "warming up". Transient, like Progress."""

    run_id: str
    stage: str
    fraction: float = -1.0  # 0–1 when known


@dataclass(frozen=True)
class Progress:
    """Throttled (≤10/s) view of the epoch in progress."""

    run_id: str
    epoch: int  # 1-based
    step: int  # steps done in this epoch
    steps: int  # steps per epoch
    loss: float  # running mean over this epoch so far
    acc: float  # running accuracy over this epoch so far (0–1)
    images_per_s: float


@dataclass(frozen=True)
class LayerStats:
    """One conv or dense layer measured on the run's probe batch at an epoch's end
    (see trainer.engine.probes): what its activation puts out and how much its weights learn."""

    name: str  # "conv1" … "dense2", in network order
    act_mean: float  # mean of the layer's output after its activation (the logits for the last)
    act_std: float  # population std of the same values
    off: float | None  # fraction in the activation's flat region: ReLU == 0, sigmoid < .01 or
    # > .99, |tanh| > .99; None where there is none (leaky ReLU, the logits)
    grad_norm: float  # L2 norm of dLoss/dWeight (data loss, probe batch)


@dataclass(frozen=True)
class Mistake:
    """One misclassified test image, by its index into the test set (never its pixels)."""

    index: int
    true: int  # class index
    predicted: int
    confidence: float  # softmax probability of the predicted class


CONFIDENCE_BINS = 10  # histogram of the chosen class's probability over [0, 1]
MAX_MISTAKES = 32
MAX_FILTERS = 64  # first-layer filters kept (the course CNN's first conv has 32)


@dataclass(frozen=True)
class Filters:
    """The first conv layer's kernels at the tested weights, to be looked at as images:
    `values` holds shape = (filters, input channels, k, k) numbers in row-major order, each
    rounded to 3 significant digits (an image needs no more, and the record stays small)."""

    shape: tuple[int, int, int, int]
    values: tuple[float, ...]


@dataclass(frozen=True)
class TestDiagnosis:
    """Where the final model is wrong on the test set (best-val weights when keep_best)."""

    classes: tuple[str, ...]  # class names, in label order
    confusion: tuple[tuple[int, ...], ...]  # [true][predicted] image counts
    confident_right: tuple[int, ...]  # CONFIDENCE_BINS counts of correct predictions
    confident_wrong: tuple[int, ...]  # … and of wrong ones
    mistakes: tuple[Mistake, ...] = ()  # the most confident mistakes, at most MAX_MISTAKES
    # The dataset's key, naming its test-images file on the machine that shows the run
    # (trainer.paths.test_images_file): the mistakes' pixels stay there, never in the record.
    # "" = not recorded (runs before the gallery, or a dataset without a fixed test set).
    test_images: str = ""
    filters: Filters | None = None  # the first conv layer's kernels; None = not recorded

    @property
    def class_acc(self) -> tuple[float | None, ...]:
        """Accuracy per true class (None for a class with no test image)."""
        return tuple(row[i] / sum(row) if sum(row) else None
                     for i, row in enumerate(self.confusion))


@dataclass(frozen=True)
class EpochEnd:
    run_id: str
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float  # lr used during this epoch
    seconds: float
    is_best: bool  # best val loss so far (the kept checkpoint when keep_best)
    lr_dropped: bool  # the schedule lowered the lr after this epoch
    layers: tuple[LayerStats, ...] = ()  # the probe batch's layer statistics (may be off)


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    test_loss: float
    test_acc: float
    best_epoch: int
    best_val_acc: float
    best_val_loss: float
    epochs_done: int
    train_seconds: float
    images_per_s: float
    early_stopped: bool = False
    diagnosis: TestDiagnosis | None = None  # None: not measured


@dataclass(frozen=True)
class RunFailed:
    run_id: str
    kind: str  # "error" | "out_of_memory" | "data" | "config" | "worker_died"
    message: str  # one line, shown in table and CLI
    traceback: str = ""


@dataclass(frozen=True)
class RunDiverged:
    """The loss became NaN or infinite: the run ends at that epoch. A result, not a success."""

    run_id: str
    epoch: int  # the epoch in which the loss stopped being finite (1-based)
    epochs_done: int  # epochs completed before it (they stay in the record)
    loss: float  # the offending value (nan, inf)


@dataclass(frozen=True)
class RunStopped:
    run_id: str
    epochs_done: int


@dataclass(frozen=True)
class RunInterrupted:
    """The run's trainer went away before it ended (the lab was killed, the machine lost
    power): its finished epochs are kept and the run can be run again."""

    run_id: str
    message: str  # the record keeps the epochs it completed (see store.apply.interrupted)


@dataclass(frozen=True)
class Notice:
    """Something the user should read that is not a run result (data warnings, store I/O)."""

    message: str
    level: str = "info"  # "info" | "warning" | "error"
    run_id: str = ""
    # "unsaved": the run's record could not be written (disk full, read-only folder);
    # "saved": a later save of that run worked again, so the file holds everything;
    # EAGER_NOTICE: its step could not be captured as a CUDA graph and trains eagerly.
    kind: str = ""


EAGER_NOTICE = "eager"  # Notice.kind: the run's record then says cuda_graph false


Event = (RunStarted | Preparing | Progress | EpochEnd | RunFinished | RunFailed | RunStopped
         | RunDiverged | RunInterrupted | Notice)
TERMINAL = (RunFinished, RunFailed, RunStopped, RunDiverged, RunInterrupted)
