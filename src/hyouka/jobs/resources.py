"""What a machine (or a Ray cluster) can run: GPUs and CPUs, against what jobs need."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    """GPUs and CPUs available to an agent's jobs."""

    gpus: float
    cpus: float

    def minus(self, gpus: float, cpus: float) -> Capacity:
        return Capacity(self.gpus - gpus, self.cpus - cpus)

    def describe(self) -> str:
        return f"{self.gpus:g} GPU{'s' if self.gpus != 1 else ''}, {self.cpus:g} CPUs"


def detect_gpus() -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else what ``nvidia-smi -L`` lists.

    torch is not imported for this: an agent of endpoint jobs stays light.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


def detect_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_capacity(gpus: float | None = None, cpus: float | None = None) -> Capacity:
    """This machine's capacity; ``gpus``/``cpus`` override what is detected."""
    return Capacity(float(detect_gpus() if gpus is None else gpus), float(detect_cpus() if cpus is None else cpus))
