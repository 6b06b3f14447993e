"""The system line (`y`): /proc parsing and CPU % from fixed samples, a fake NVML with two
GPUs, and a machine without NVML (CPU and memory only, no error)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import wait_for
from helpers.fake_trainer import FakeTrainer

from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.state.system import (
    GB,
    CpuTimes,
    GpuStat,
    Nvml,
    SystemSampler,
    cpu_percent,
    parse_meminfo,
    parse_proc_stat,
    system_parts,
)
from tui.widgets.system import SystemLine

STAT_1 = """cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
intr 12345
"""
STAT_2 = """cpu  160 0 70 880 90 0 0 0 0 0
cpu0 80 0 35 440 45 0 0 0 0 0
"""
MEMINFO = """MemTotal:       16384000 kB
MemFree:         2048000 kB
MemAvailable:    8192000 kB
Buffers:          512000 kB
Cached:          4096000 kB
"""


def test_cpu_percent_is_the_busy_share_between_two_samples():
    a, b = parse_proc_stat(STAT_1), parse_proc_stat(STAT_2)
    assert a == CpuTimes(busy=150, total=1000)  # idle + iowait are not busy
    assert b == CpuTimes(busy=230, total=1200)
    assert cpu_percent(a, b) == pytest.approx(40.0)  # 80 busy of 200 jiffies
    assert cpu_percent(None, b) is None  # the first sample has nothing to compare with
    assert cpu_percent(b, b) is None  # no time passed
    assert parse_proc_stat("garbage\n") is None and parse_proc_stat("cpu x y") is None


def test_meminfo_used_is_total_minus_available():
    assert parse_meminfo(MEMINFO) == ((16384000 - 8192000) * 1024, 16384000 * 1024)
    old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
    assert parse_meminfo(old_kernel) == (600 * 1024, 1000 * 1024)
    assert parse_meminfo("") is None


class FakeNvml:
    """Two devices, as NVML would report them."""

    closed = False

    def gpus(self) -> list[GpuStat]:
        return [GpuStat(0, "NVIDIA H200", 87.0, 10 * GB, 141 * GB),
                GpuStat(1, "NVIDIA H200", 3.0, GB // 2, 141 * GB)]

    def close(self) -> None:
        FakeNvml.closed = True


def fake_read(samples: list[str]):
    stats = iter(samples)

    def read(path: str) -> str:
        return next(stats, samples[-1]) if path == "/proc/stat" else MEMINFO

    return read


def test_sampler_with_two_gpus_and_without_nvml():
    sampler = SystemSampler(FakeNvml, read=fake_read([STAT_1, STAT_2]), loadavg=lambda: 1.5)
    first, second = sampler.sample(), sampler.sample()
    assert first.cpu is None and second.cpu == pytest.approx(40.0)
    parts = dict(system_parts(second))
    assert parts["CPU"] == "40%" and parts["mem"] == "7.8/16 GB"
    assert parts["load"].startswith("1.5/")
    assert parts["GPU0 H200"] == "87% 10.0/141 GB"
    assert parts["GPU1 H200"] == "3% 0.5/141 GB"

    bare = SystemSampler(lambda: None, read=fake_read([STAT_1]), loadavg=lambda: None)
    labels = [label for label, _ in system_parts(bare.sample())]
    assert labels == ["CPU", "mem"]


def test_nvml_missing_or_failing_is_quiet(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert Nvml.open() is None

    def no_driver() -> None:
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=no_driver))
    assert Nvml.open() is None

    class Broken(FakeNvml):
        def gpus(self) -> list[GpuStat]:
            raise RuntimeError("GPU is lost")

    sampler = SystemSampler(Broken, read=fake_read([STAT_1]))
    assert sampler.sample().gpus == [] and sampler.gpu is None  # stops asking
    assert sampler.sample().mem_total == 16384000 * 1024


def test_nvml_reads_every_device_and_keeps_a_failing_one():
    class Lib:
        def nvmlDeviceGetCount(self) -> int:
            return 2

        def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
            return i

        def nvmlDeviceGetName(self, h: int) -> bytes:
            return b"NVIDIA A100"

        def nvmlDeviceGetUtilizationRates(self, h: int):
            if h == 1:
                raise RuntimeError("not supported")
            return SimpleNamespace(gpu=55)

        def nvmlDeviceGetMemoryInfo(self, h: int):
            return SimpleNamespace(used=GB, total=40 * GB)

    gpus = Nvml(Lib()).gpus()
    assert [(g.name, g.util, g.mem_total) for g in gpus] == [
        ("NVIDIA A100", 55.0, 40 * GB), ("NVIDIA A100", None, 40 * GB)]


# -- the line in the app -----------------------------------------------------------------------
def aio(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def make_app(tmp_path: Path, open_gpu) -> CnnTuiApp:
    runs = tmp_path / "runs"

    def sampler() -> SystemSampler:
        return SystemSampler(open_gpu, read=fake_read([STAT_1, STAT_2]), loadavg=lambda: 0.5)

    return CnnTuiApp(FakeTrainer(store=RunStore(runs)),
                     StartOptions(runs_dir=runs, check_data=False, blink=False,
                                  refresh_interval=0.1, overrides={"dataset": "synthetic"},
                                  system=sampler))


def line(app: CnnTuiApp) -> str:
    return app.main.query_one(SystemLine).content.plain


@aio
async def test_y_shows_both_gpus_and_hides_the_line_again(tmp_path):
    FakeNvml.closed = False
    app = make_app(tmp_path, FakeNvml)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app._prefs_applied, what="the first frame")
        widget = app.main.query_one(SystemLine)
        assert not widget.display and widget.sample is None  # off by default: no polling
        await pilot.press("y")
        await wait_for(pilot, lambda: "GPU1" in line(app), what="a sample with both GPUs")
        text = line(app)
        assert "GPU0 H200 87% 10.0/141 GB" in text and "GPU1 H200 3% 0.5/141 GB" in text
        assert text.startswith("CPU ") and "mem 7.8/16 GB" in text
        await pilot.press("y")
        assert not widget.display
        await wait_for(pilot, lambda: FakeNvml.closed, what="NVML closed once hidden")


@aio
async def test_without_nvml_the_line_shows_cpu_and_memory(tmp_path):
    app = make_app(tmp_path, lambda: None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app._prefs_applied, what="the first frame")
        await pilot.press("3", "y")
        await wait_for(pilot, lambda: "CPU 40%" in line(app), what="the second sample")
        assert "GPU" not in line(app) and "mem 7.8/16 GB" in line(app)
        assert app.main.query_one("#results").region.height >= 3  # the table keeps its rows


@aio
async def test_the_line_is_remembered_for_the_next_session(tmp_path):
    app = make_app(tmp_path, lambda: None)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app._prefs_applied, what="the first frame")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.main.query_one(SystemLine).sample, what="a sample")
    again = make_app(tmp_path, lambda: None)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: again.main.query_one(SystemLine).sample, what="polling")
        assert again.main.system_pane and again.main.query_one(SystemLine).display
