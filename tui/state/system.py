"""System use for the system line: CPU, memory and, where NVIDIA's library is, each GPU.

Plain Python (no Textual, no torch), so it is testable with fixed text samples and a fake
NVML. CPU and memory come from /proc/stat, /proc/meminfo and `os.getloadavg` (no psutil);
CPU % is the busy share of the jiffies between two samples. GPUs come through NVIDIA's
management library (`pynvml`, from nvidia-ml-py), which is imported and initialised lazily
and only loads libnvidia-ml where it is installed: with no GPU, no driver or no binding the
GPU part is simply absent. NVML calls can block (a busy or wedged driver), so the widget
samples on a thread, at most once a second.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

GB = 1024 ** 3


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative jiffies of the aggregate `cpu` line of /proc/stat."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The `cpu` line: user nice system idle iowait irq softirq steal (guest is inside user)."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:9]]
            except ValueError:
                return None
            if len(values) < 4:
                return None
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values)
            return CpuTimes(busy=total - idle, total=total)
    return None


def cpu_percent(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """Busy share of the time between two samples, 0–100 (None: not two usable samples)."""
    if before is None or after is None:
        return None
    total = after.total - before.total
    if total <= 0:
        return None
    busy = min(max(after.busy - before.busy, 0), total)
    return 100.0 * busy / total


def parse_meminfo(text: str) -> tuple[int, int] | None:
    """(used, total) bytes: total − MemAvailable (older kernels: free + buffers + cached)."""
    kib: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            kib[name.strip()] = int(fields[0])
    total = kib.get("MemTotal")
    if not total:
        return None
    available = kib.get("MemAvailable")
    if available is None:
        available = kib.get("MemFree", 0) + kib.get("Buffers", 0) + kib.get("Cached", 0)
    return max(total - available, 0) * 1024, total * 1024


@dataclass(frozen=True)
class GpuStat:
    index: int
    name: str
    util: float | None  # % busy over the driver's last sample period
    mem_used: int | None  # bytes
    mem_total: int | None


class GpuSource(Protocol):
    """What the sampler needs of NVML (tests hand in a fake)."""

    def gpus(self) -> list[GpuStat]: ...

    def close(self) -> None: ...


class Nvml:
    """The real NVML through pynvml; `open` returns None where there is none to talk to."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.count = int(lib.nvmlDeviceGetCount())

    @classmethod
    def open(cls) -> Nvml | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml)
        except Exception:  # no binding, no libnvidia-ml, no driver, no device: no GPU part
            return None

    def gpus(self) -> list[GpuStat]:
        out = []
        for i in range(self.count):
            name, util, used, total = f"GPU {i}", None, None, None
            with contextlib.suppress(Exception):  # one device that fails keeps its row
                handle = self.lib.nvmlDeviceGetHandleByIndex(i)
                raw = self.lib.nvmlDeviceGetName(handle)
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                with contextlib.suppress(Exception):
                    util = float(self.lib.nvmlDeviceGetUtilizationRates(handle).gpu)
                with contextlib.suppress(Exception):
                    mem = self.lib.nvmlDeviceGetMemoryInfo(handle)
                    used, total = int(mem.used), int(mem.total)
            out.append(GpuStat(i, name, util, used, total))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.lib.nvmlShutdown()


@dataclass(frozen=True)
class SystemSample:
    cpu: float | None = None  # %
    load: float | None = None  # 1-minute load average
    cores: int = 1
    mem_used: int | None = None
    mem_total: int | None = None
    gpus: list[GpuStat] = field(default_factory=list)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class SystemSampler:
    """Takes one sample per call (CPU % against the previous call); every source injectable."""

    def __init__(self, open_gpu: Callable[[], GpuSource | None] = Nvml.open,
                 read: Callable[[str], str] = _read,
                 loadavg: Callable[[], float | None] = _loadavg) -> None:
        self._gpu_factory: Callable[[], GpuSource | None] | None = open_gpu
        self.gpu: GpuSource | None = None
        self.read = read
        self.loadavg = loadavg
        self._last: CpuTimes | None = None

    def sample(self) -> SystemSample:
        if self._gpu_factory is not None:  # opened on first use: on the sampling thread
            self.gpu, self._gpu_factory = self._gpu_factory(), None
        now = parse_proc_stat(self.read("/proc/stat"))
        cpu = cpu_percent(self._last, now)
        self._last = now
        mem = parse_meminfo(self.read("/proc/meminfo"))
        gpus: list[GpuStat] = []
        if self.gpu is not None:
            try:
                gpus = self.gpu.gpus()
            except Exception:  # the driver went away: stop asking, keep CPU and memory
                self.close()
        return SystemSample(cpu=cpu, load=self.loadavg(), cores=os.cpu_count() or 1,
                            mem_used=mem[0] if mem else None,
                            mem_total=mem[1] if mem else None, gpus=gpus)

    def close(self) -> None:
        if self.gpu is not None:
            self.gpu.close()
            self.gpu = None


def _gb(used: int | None, total: int | None) -> str:
    if used is None or total is None:
        return "–"
    return f"{used / GB:.1f}/{total / GB:.0f} GB"


def short_gpu_name(name: str) -> str:
    """'NVIDIA H200' → 'H200': the line is short."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "Tesla "):
        name = name.removeprefix(prefix)
    return name


def system_parts(s: SystemSample) -> list[tuple[str, str]]:
    """(label, value) pairs of the line, in order: CPU, load, memory, then each GPU."""
    parts = [("CPU", "…" if s.cpu is None else f"{s.cpu:.0f}%")]
    if s.load is not None:
        parts.append(("load", f"{s.load:.1f}/{s.cores}"))
    parts.append(("mem", _gb(s.mem_used, s.mem_total)))
    for g in s.gpus:
        util = "–" if g.util is None else f"{g.util:.0f}%"
        parts.append((f"GPU{g.index} {short_gpu_name(g.name)}",
                      f"{util} {_gb(g.mem_used, g.mem_total)}"))
    return parts
