"""Process memory readings for the memory benchmark and tests (Linux).

CPU memory is the process's resident set (RSS) from ``/proc/self/status``:
``VmRSS`` now and ``VmHWM``, its peak. Writing ``5`` to
``/proc/self/clear_refs`` resets the peak to the current RSS (Linux >= 4.0),
so one process can measure the peak of a phase. On a CUDA device the peak
of memory allocated by torch is read as well.
"""
import statistics
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List

import torch

_STATUS = '/proc/self/status'


def _status_mib(key: str) -> float:
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f'{_STATUS} has no {key} line')


def rss_mib() -> float:
    """Resident memory of this process now, MiB."""
    return _status_mib('VmRSS')


def peak_rss_mib() -> float:
    """Peak resident memory of this process (since start or the last
    :func:`reset_peak_rss`), MiB."""
    return _status_mib('VmHWM')


def reset_peak_rss() -> None:
    """Set the peak RSS to the current RSS.

    Raises:
        OSError: the kernel refuses (not Linux, or too old).
    """
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


@contextmanager
def peak_memory(device: str = 'cpu') -> Iterator[Dict[str, float]]:
    """Measure the peak memory of the enclosed code.

    Yields a dict filled on exit: ``rss_before`` and ``peak_rss`` (MiB,
    whole process), ``rss_added`` (their difference) and, on CUDA,
    ``cuda_peak`` (MiB allocated by torch at most).
    """
    cuda = str(device).startswith('cuda')
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    before = rss_mib()
    reset_peak_rss()
    out: Dict[str, float] = {}
    try:
        yield out
    finally:
        if cuda:
            torch.cuda.synchronize(device)
            out['cuda_peak'] = torch.cuda.max_memory_allocated(device) / 2**20
        out['rss_before'] = before
        out['peak_rss'] = peak_rss_mib()
        out['rss_added'] = out['peak_rss'] - before


def rss_trace(fn: Callable[[], object], repeats: int,
              warmup: int = 0) -> List[float]:
    """RSS (MiB) after each of ``repeats`` calls of ``fn``, after
    ``warmup`` untraced calls (allocator caches settle in those)."""
    for _ in range(warmup):
        fn()
    trace = []
    for _ in range(repeats):
        fn()
        trace.append(rss_mib())
    return trace


def _rise(trace: List[float]) -> float:
    tail = max(1, len(trace) // 5)
    return statistics.median(trace[-tail:]) - statistics.median(trace[:tail])


def growth_mib(trace: List[float]) -> float:
    """Steady RSS growth over a trace, MiB: the smaller of the rises of
    its two halves, each the median of its last fifth minus the median of
    its first fifth. A leak raises both halves alike; a one-off step (the
    allocator taking a new arena once) raises one, and a single reading
    taken while a buffer was briefly held moves no median much."""
    half = len(trace) // 2
    return min(_rise(trace[:half]), _rise(trace[half:]))
