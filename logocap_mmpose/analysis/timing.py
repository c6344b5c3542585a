"""The one timing of every benchmark: a warm-up, then the median over
repeats of the wall time per image, device work included.

- :class:`Stopwatch` times a block; :func:`median_seconds` is the loop that
  every benchmark runs (the codec, the model, an exported graph, a video).
  Two measurements need another shape of loop and still time with
  :class:`Stopwatch`: the profiled runs of the stage breakdown (inside one
  profiler, ``benchmark.profile_stages``) and the variants timed in turns
  of the speed-change table (``benchmark.interleaved_ms``);
- :func:`time_test_step` times ``model.test_step`` (or any callable that
  takes a batch) per image, :func:`count_workload` counts the proposals
  worked on, and :func:`time_end_to_end` returns both as a :class:`Timing`;
- :func:`time_onnxruntime` and :func:`time_one_graph` time the exported
  model (two graphs with Python between them, or one graph) the same way.
"""
import copy
import statistics
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .inputs import is_logocap, test_options


def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


class Stopwatch:
    """Wall time of a ``with`` block, device work included.

    Example::

        with Stopwatch('cuda:0') as watch:
            model.test_step(data)
        watch.seconds
    """

    def __init__(self, device: str = 'cpu'):
        self.device = device
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> 'Stopwatch':
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def median_seconds(run: Callable[[Any], Any], repeats: int,
                   device: str = 'cpu',
                   prepare: Optional[Callable[[], Any]] = None,
                   warmup: int = 0) -> Tuple[float, Any]:
    """Median wall time (:class:`Stopwatch`) of ``repeats`` calls of
    ``run(prepare())`` (``run()`` without ``prepare``; ``prepare`` is not
    timed) after ``warmup`` untimed calls, and the last call's result."""
    for _ in range(max(0, warmup)):
        run(*(() if prepare is None else (prepare(), )))
    times, result = [], None
    for _ in range(max(repeats, 1)):
        args = () if prepare is None else (prepare(), )
        with Stopwatch(device) as watch:
            result = run(*args)
        times.append(watch.seconds)
    return statistics.median(times), result


@torch.no_grad()
def time_test_step(model: nn.Module,
                   batches: Sequence[dict],
                   warmup: int = 2,
                   repeats: int = 3,
                   device: str = 'cpu',
                   run: Optional[Callable[[dict], list]] = None
                   ) -> Tuple[float, list]:
    """Milliseconds per image of ``model.test_step`` (or of ``run``, any
    callable that takes a test batch as ``test_step`` does, e.g. an ONNX
    pipeline).

    ``warmup`` untimed runs (cycling over the batches), then per batch the
    median of ``repeats`` timed runs on a deep copy of the batch
    (:func:`median_seconds`), divided by its images; the mean over the
    batches.

    Returns:
        tuple: ms per image and the last result of every batch.
    """
    run = model.test_step if run is None else run
    for i in range(warmup):
        run(copy.deepcopy(batches[i % len(batches)]))
    per_image, results = [], []
    for batch in batches:
        seconds, result = median_seconds(
            run, repeats, device, prepare=lambda: copy.deepcopy(batch))
        per_image.append(seconds / max(len(batch['inputs']), 1))
        results.append(result)
    return 1000.0 * statistics.mean(per_image), results


@torch.no_grad()
def count_workload(model: nn.Module, batches: Sequence[dict]) -> float:
    """Mean number of proposals per image that a model works on.

    LOGO-CAP: the proposals refined, i.e. the batch dimension of the message
    passing input, seen by a forward pre-hook on ``head.cmp`` (0 in the
    modes without KAMs). Other bottom-up heads (DEKR): the instances
    returned with pose NMS off (``test_cfg.nms_dist_thr=0``), i.e. what the
    decoder finds. One untimed ``test_step`` per batch.
    """
    if not batches:
        return 0.0
    counts = []
    if is_logocap(model):
        seen = []

        def record(module, args):
            seen.append(int(args[0].shape[0]))

        handle = model.head.cmp.register_forward_pre_hook(record)
        try:
            for batch in batches:
                seen.clear()
                model.test_step(copy.deepcopy(batch))
                counts.append(sum(seen))
        finally:
            handle.remove()
    else:
        with test_options(model, nms_dist_thr=0):
            for batch in batches:
                results = model.test_step(copy.deepcopy(batch))
                counts.append(sum(len(r.pred_instances) for r in results))
    return statistics.mean(counts)


class Timing(NamedTuple):
    """What :func:`time_end_to_end` measures (means over the images)."""
    ms_per_image: float
    proposals: float  # worked on, see count_workload
    instances: float  # poses returned


def time_end_to_end(model: nn.Module,
                    batches: Sequence[dict],
                    warmup: int = 2,
                    repeats: int = 3,
                    device: str = 'cpu') -> Timing:
    """:func:`time_test_step` and :func:`count_workload` of one model."""
    ms, results = time_test_step(model, batches, warmup, repeats, device)
    instances = statistics.mean(
        sum(len(r.pred_instances) for r in result) for result in results)
    return Timing(ms, count_workload(model, batches), instances)


def time_onnxruntime(model: nn.Module,
                     dense: Union[Any, Sequence[Any]],
                     refinement: Any,
                     batches: Sequence[dict],
                     warmup: int = 2,
                     repeats: int = 3,
                     threads: Optional[int] = None,
                     providers: Optional[Sequence[str]] = None) -> float:
    """Milliseconds per image of ``deploy.ONNXRuntimePipeline`` (both graphs,
    the Python between them and the mapping back), timed by
    :func:`time_test_step` as it times ``model.test_step``.

    Args:
        model (BottomupPoseEstimator): the LOGO-CAP model the graphs come
            from (with the ``test_cfg`` to time).
        dense (str | ONNXDenseNetwork | Sequence): dense graph(s), see
            ``deploy.ONNXRuntimePipeline``.
        refinement (str | ONNXRefinement): the refinement graph.
        batches (Sequence[dict]): test batches, e.g.
            ``analysis.prepare_batches(model, paths)``.
        warmup (int): untimed runs.
        repeats (int): timed runs per batch (the median counts).
        threads (int, optional): onnxruntime intra-op threads (default:
            ``torch.get_num_threads()``, the threads PyTorch uses).
        providers (Sequence[str], optional): execution providers (CPU).
    """
    from ..deploy import ONNXRuntimePipeline
    if threads is None:
        threads = torch.get_num_threads()
    pipeline = ONNXRuntimePipeline(model, dense, refinement, providers,
                                   threads)
    return time_test_step(model, batches, warmup, repeats, run=pipeline)[0]


def time_one_graph(model: nn.Module,
                   graph: Any,
                   batches: Sequence[dict],
                   warmup: int = 2,
                   repeats: int = 3,
                   threads: Optional[int] = None,
                   options: Optional[dict] = None,
                   runtime: str = 'onnxruntime') -> float:
    """Milliseconds per image of the one graph
    (``one_graph.one_graph_inference``: the graph, then the mapping back),
    timed as :func:`time_onnxruntime`.

    Args:
        model (BottomupPoseEstimator): the model the graph comes from.
        graph (str | PoseGraph): the graph (a path is opened with
            ``threads`` and the session ``options``).
        batches, warmup, repeats, threads: as :func:`time_onnxruntime`.
        options (dict, optional): onnxruntime ``SessionOptions``
            (``logocap_runtime.make_session``).
        runtime (str): ``'onnxruntime'`` or ``'openvino'`` (f32).
    """
    from logocap_runtime import PoseGraph

    from ..deploy.one_graph import one_graph_inference
    if isinstance(graph, str):
        graph = PoseGraph(graph, threads=threads or torch.get_num_threads(),
                          options=options, runtime=runtime)
    return time_test_step(
        model, batches, warmup, repeats,
        run=lambda data: one_graph_inference(model, graph, data))[0]
