"""Is the machine quiet enough to time on? Load average and a calibration run.

A benchmark run on a loaded machine measures the other jobs as much as
graphattn. :func:`machine_warnings` says so before (and after) a run: the
load average above the number of cores this process may use, or a
calibration run (the same small matmul timed several times) whose slowest
calls are much slower than its fastest, which is what other jobs sharing the
cores look like.

Examples
--------
>>> warnings_for(load=0.5, cores=2, calibration=[1.0, 1.1, 1.0])
[]
>>> warnings_for(load=5.0, cores=2, calibration=[1.0, 3.0, 2.5])[0]
'the load average (5.0) is above the 2 cores this process may use: ...'
"""

from __future__ import annotations

import os
import statistics
import time

import torch

__all__ = ["CALIBRATION_SPREAD", "calibrate", "cores", "load_average", "machine_warnings"]

CALIBRATION_SIZE = 512  # the calibration run times a (512, 512) @ (512, 512) fp32 matmul
CALIBRATION_CALLS = 9
CALIBRATION_SPREAD = 1.5  # median / fastest call above this: other jobs share the cores


def cores() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float | None:
    """The one-minute load average, or None where the platform has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def calibrate(calls: int = CALIBRATION_CALLS) -> list[float]:
    """Seconds of ``calls`` runs of the same fp32 matmul, after one warm-up run."""
    a = torch.randn(CALIBRATION_SIZE, CALIBRATION_SIZE)
    times = []
    for _ in range(calls + 1):
        t0 = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t0)
    return times[1:]


def warnings_for(load: float | None, cores: int, calibration: list[float]) -> list[str]:
    """The warnings a load average and calibration times call for (empty on a quiet machine)."""
    out = []
    if load is not None and load > cores:
        out.append(
            f"the load average ({load:.1f}) is above the {cores} cores this process may use: "
            "other jobs are running, and times will be slower and noisier than on a quiet machine"
        )
    spread = statistics.median(calibration) / min(calibration)
    if spread > CALIBRATION_SPREAD:
        out.append(
            f"a calibration matmul timed {len(calibration)} times ran {spread:.1f}x slower at its "
            f"median than at its fastest (quiet: under {CALIBRATION_SPREAD}x): the cores are shared"
        )
    return out


def machine_warnings() -> list[str]:
    """Warnings about the load of this machine right now (empty when it is quiet)."""
    return warnings_for(load_average(), cores(), calibrate())
