"""The same config and seed give the same numbers on every machine of a kind, whatever its
load: the numeric kernels are pinned before torch computes anything.

torch, MKL and oneDNN each pick their kernels by the processor's instruction set (AVX-512
where there is one, AVX2 elsewhere, MKL also by vendor), and kernels of different vector
widths sum in other orders: the same SFT writes other weights with this machine's own
kernels than with AVX2 ones (``bench-determinism``), and a quickstart that scored 0.243 on
one machine of this kind scored 0.273 on another. ``pin_numerics`` sets torch's and oneDNN's
kernels to AVX2 (the widest set all x86-64 machines of this kind have) and MKL to its
compatible reproducible branch (the only branch MKL honours on Intel and AMD processors
alike: an ISA branch such as AVX2 reads as AUTO on AMD), and turns off thread counts that
adapt to load. ``pin_threads`` fixes torch's thread count (``$IPR_THREADS``, default 2, the
cores of this kind; the count is part of the pins, since MKL's compatible branch sums in
another order on one thread, the load is not) and asks for torch's deterministic algorithms.
Randomness is seeded where it is drawn (data order in ``train``, every generation request in
``rollout``, the tiny model's initialisation). The cost, mostly MKL's compatible branch:
``benchmarks/results/determinism.md``.

``IPR_NUMERICS=native`` leaves every library its own choice (faster, numbers then depend on
the processor). The pins are environment variables the libraries read when they first
compute, so they are set when ``ipr_train`` is imported: import it before torch runs
anything, as ``ipr-train`` does.
"""

from __future__ import annotations

import os
import warnings

PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels
    # MKL's BLAS: the one branch every vendor's processor runs alike (MKL_VERBOSE shows an
    # ISA branch such as AVX2 as CNR:AUTO on AMD)
    "MKL_CBWR": "COMPATIBLE,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's kernels (some convolutions and matmuls)
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same, by oneDNN's older name
    "MKL_DYNAMIC": "FALSE",  # MKL uses the threads it is given, not fewer under load
    "OMP_DYNAMIC": "FALSE",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # on a GPU: cuBLAS's deterministic mode
}
THREADS_VAR = "IPR_THREADS"
DEFAULT_THREADS = 2
NATIVE_VAR = "IPR_NUMERICS"


def pinned() -> bool:
    return os.environ.get(NATIVE_VAR, "pinned") != "native"


def pin_numerics() -> None:
    """Set the kernel pins unless ``IPR_NUMERICS=native``; a value already set is kept."""
    if pinned():
        for key, value in PINS.items():
            os.environ.setdefault(key, value)


def threads() -> int:
    raw = os.environ.get(THREADS_VAR, str(DEFAULT_THREADS))
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"${THREADS_VAR} must be a positive integer, got {raw!r}")
    return int(raw)


def pin_threads() -> None:
    """torch's thread count and deterministic algorithms (called where torch work starts);
    warns once if torch chose its kernels before the pins were set."""
    import torch

    torch.set_num_threads(threads())
    if not pinned():
        return
    torch.use_deterministic_algorithms(True, warn_only=True)
    chosen = torch.backends.cpu.get_cpu_capability()
    if chosen not in ("AVX2", "DEFAULT", "NO AVX"):
        warnings.warn(
            f"torch runs {chosen} kernels, not the pinned AVX2: it computed before "
            "ipr_train was imported, so numbers may differ on another machine. Import "
            f"ipr_train first, or set ATEN_CPU_CAPABILITY=avx2 (or {NATIVE_VAR}=native).",
            stacklevel=2,
        )
