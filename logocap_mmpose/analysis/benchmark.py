"""LOGO-CAP vs DEKR inference time, and LOGO-CAP's stage breakdown.

One run, one machine, the same images and test settings for both models:

1. End-to-end milliseconds per image of ``model.test_step`` (normalisation,
   backbone + neck on the image and its flip, head, decoding, mapping back to
   the image): ``--warmup`` untimed runs, then the median of ``--repeats``
   timed runs per image, averaged over the images. Reading and resizing the
   image (the data pipeline) is the same for both and is not timed.
2. LOGO-CAP's breakdown as in the paper's Table 4 (backbone, local KEMs,
   local KAMs, global KAMs / contextual adaptation, decode) at 1 and 30
   proposals, from ``torch.profiler`` ranges whose names
   ``logocap_mmpose/models/profiling.py`` defines:
   ``LOGOCAPPoseEstimator`` opens the preprocessing, backbone + neck (both
   flip passes) and head ranges, the head opens its stage ranges. A DEKR
   config built on MMPose's ``BottomupPoseEstimator`` is built here as
   ``LOGOCAPPoseEstimator`` (the same network and the same poses for a
   batch of one image, plus the ranges), so both models are profiled alike.
   Profiling adds overhead, so shares come from the profiled runs and the
   end-to-end figures from un-profiled runs.

3. LOGO-CAP's speed changes added one at a time: the image and
   its flip as one batch, BatchNorm folded into the convs, duplicate
   proposals dropped before the refinement; ms/image, images/s, proposals
   refined and the backbone / message passing / rest split per row, in
   the same run; the rows are timed in turns so that load changes hit all
   alike (``--skip-changes`` leaves it out). The other sections time the
   models with their configs' settings (one pass and folding on by
   default, dropping duplicates off).
4. LOGO-CAP exported to ONNX, as two graphs (dense network, refinement;
   ``deploy/runtime.py``) and as one graph (``deploy/one_graph.py``), run
   in onnxruntime beside PyTorch, at its
   own proposals and at the forced count (``--skip-onnx`` leaves it out).

The table states each model's workload: the proposals it works on (DEKR:
instances decoded before pose NMS; LOGO-CAP: proposals refined) and the
poses it returns. With random weights (no checkpoint; ``--seed`` fixes
them) the two decoders can find different numbers of person centres, so the
plain rows may compare unequal work; a note says so. The rows
"N proposals forced" time both with exactly N proposals per image (decoding
thresholds removed while they run; ``--force-proposals``), i.e. equal work.

The profiler's own start/stop log lines (``USDT: ... profiler_start``) are
kept off the terminal; everything else written to stderr passes through.

``tools/benchmark_inference.py`` is the command line over
:func:`run_benchmark`. Example (CPU-sized pair on coco-mini, random weights when no checkpoint)::

    python tools/benchmark_inference.py \
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \
        --data-root ../shared/data/coco-mini --num-images 10
"""
import copy
import importlib.util
import os
import os.path as osp
import statistics
import sys
import tempfile
from collections import OrderedDict
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ..models.profiling import BACKBONE, HEAD, HEAD_STAGES, PREPROCESS
from . import (Column, Stopwatch, Timing, build_model, count_params,
               count_workload, is_logocap, load_config, markdown_table,
               overridden, prepare_batches, proposals_word, set_test_options,
               short_name, test_options, time_end_to_end, time_ratio_sentence,
               val_image_paths, workload_note, write_report)

KEYS = ('DEKR', 'LOGO-CAP')  # table order
#: the estimator types built as LOGOCAPPoseEstimator to carry the ranges
PROFILED_AS_LOGOCAP = ('BottomupPoseEstimator', 'mmpose.BottomupPoseEstimator')

TIMING_COLUMNS = [
    Column('model', 'model'),
    Column('config', 'config'),
    Column('input', 'input'),
    Column('params_m', 'params (M)', '{:.2f}'),
    Column('ms', 'ms/image', '{:.1f}'),
    Column('proposals', 'proposals/image', '{:.1f}'),
    Column('instances', 'instances/image', '{:.1f}'),
    Column('trained', 'trained weights'),
]


@dataclass
class Subject:
    """A model under test with the batches it is timed on."""
    key: str  # 'DEKR' or 'LOGO-CAP'
    config_path: str
    cfg: object  # mmengine.Config
    checkpoint: Optional[str]
    model: nn.Module
    batches: List[dict]

    @property
    def name(self) -> str:
        return short_name(self.config_path)


# --------------------------------------------------------------------------
# models and images
# --------------------------------------------------------------------------
def profiled_config(cfg):
    """``cfg`` with MMPose's ``BottomupPoseEstimator`` replaced by
    ``LOGOCAPPoseEstimator`` (same network and arguments, plus the profiler
    ranges); other estimator types are kept. ``cfg`` is not modified."""
    if cfg.model.get('type') not in PROFILED_AS_LOGOCAP:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.model.type = 'LOGOCAPPoseEstimator'
    return cfg


def image_paths(args, cfg) -> List[str]:
    """``--img-dir`` images (sorted by name) or the config's val images."""
    if not args.img_dir:
        return val_image_paths(cfg, args.num_images)
    paths = sorted(
        osp.join(args.img_dir, f) for f in os.listdir(args.img_dir)
        if f.lower().endswith(('.jpg', '.jpeg', '.png')))
    return paths[:args.num_images] if args.num_images > 0 else paths


def load_subjects(args) -> Dict[str, Subject]:
    """Both models, flip test on, with their test batches of the images."""
    paths = {'LOGO-CAP': args.logocap_config, 'DEKR': args.dekr_config}
    ckpts = {'LOGO-CAP': args.logocap_checkpoint,
             'DEKR': args.dekr_checkpoint}
    cfgs = {key: load_config(path, args.data_root, args.cfg_options)
            for key, path in paths.items()}
    images = image_paths(args, cfgs['LOGO-CAP'])
    subjects = {}
    for key in KEYS:
        model = build_model(profiled_config(cfgs[key]), ckpts[key],
                            args.device)
        set_test_options(model, flip_test=True)
        subjects[key] = Subject(key, paths[key], cfgs[key], ckpts[key], model,
                                prepare_batches(model, images))
    return subjects


@contextmanager
def forced_proposals(model: nn.Module, num: int) -> Iterator[None]:
    """Exactly ``num`` proposals per image while inside; undone on exit.

    LOGO-CAP: ``test_cfg.max_proposals = num`` and its codec's centre-score
    threshold 0, so the cap is reached (the paper times a fixed number of
    proposals). Other bottom-up heads (DEKR; MMPose's ``SPR`` codec keeps
    the top ``decode_max_instances`` centres scoring above ``decode_thr``):
    ``decode_max_instances = num`` and no threshold. Pose NMS still applies.

    Raises:
        ValueError: a head without such a decoder.
    """
    decoder = getattr(model.head, 'decoder', None)
    if decoder is None or not hasattr(decoder, 'decode_max_instances'):
        raise ValueError(f'{type(model.head).__name__} has no decoder with '
                         '`decode_max_instances`: cannot force its count')
    if is_logocap(model):
        settings = dict(decode_max_instances=max(
            num, decoder.decode_max_instances))
        threshold = 0.0
    else:
        settings = dict(decode_max_instances=num)
        threshold = float('-inf')
    if hasattr(decoder, 'decode_thr'):
        settings['decode_thr'] = threshold
    with ExitStack() as stack:
        if is_logocap(model):
            stack.enter_context(test_options(model, max_proposals=num))
        stack.enter_context(overridden(decoder, **settings))
        yield


# --------------------------------------------------------------------------
# profiling
# --------------------------------------------------------------------------
@contextmanager
def quiet_profiler_output(drop: str = 'USDT:') -> Iterator[None]:
    """Keep the profiler's start/stop log lines off the terminal.

    ``torch.profiler`` (Kineto) writes ``USDT: ... profiler_start`` and
    ``... profiler_stop`` straight to file descriptor 2, below Python. Inside
    this context fd 2 goes to a temporary file; on exit every line that does
    not start with ``drop`` is written to the real stderr.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode='w+b') as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True)
                    if not line.lstrip().startswith(drop.encode())]
            if kept:
                sys.stderr.buffer.write(b''.join(kept))
                sys.stderr.flush()


@torch.no_grad()
def profile_stages(model: nn.Module,
                   batches: Sequence[dict],
                   warmup: int = 1,
                   repeats: int = 3,
                   device: str = 'cpu') -> Dict[str, float]:
    """Milliseconds per image of every profiler range of ``profiling.py``,
    plus ``total`` (wall time of ``test_step`` inside the profiled runs).

    Ranges absent from the runs (e.g. a head without stage ranges) are
    absent from the result.
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    with quiet_profiler_output():
        for i in range(warmup):
            model.test_step(copy.deepcopy(batches[i % len(batches)]))
        runs, wall = 0, 0.0
        with profile(activities=activities) as prof:
            for batch in batches:
                for _ in range(repeats):
                    data = copy.deepcopy(batch)
                    with Stopwatch(device) as watch:
                        model.test_step(data)
                    wall += watch.seconds
                    runs += 1
    wanted = {PREPROCESS, BACKBONE, HEAD, *HEAD_STAGES}
    stages = {
        # inclusive CPU time of the range, in microseconds
        event.key: event.cpu_time_total / 1000.0 / runs
        for event in prof.key_averages() if event.key in wanted
    }
    stages['total'] = 1000.0 * wall / runs
    return stages


def breakdown_rows(stages: Dict[str, float]) -> 'OrderedDict[str, float]':
    """Table 4 style rows (label -> ms/image) from :func:`profile_stages`."""
    rows = OrderedDict()
    rows['preprocess (normalise)'] = stages.get(PREPROCESS, 0.0)
    rows['backbone + neck (image and flip)'] = stages.get(BACKBONE, 0.0)
    marked = 0.0
    for key, label in HEAD_STAGES.items():
        if key in stages:
            rows[label] = stages[key]
            marked += stages[key]
    head = stages.get(HEAD, 0.0)
    rows['head: rest (proposal bookkeeping)'] = max(head - marked, 0.)
    accounted = rows['preprocess (normalise)'] + \
        rows['backbone + neck (image and flip)'] + head
    rows['mapping to image, bookkeeping'] = max(stages['total'] - accounted,
                                                0.0)
    rows['total'] = stages['total']
    return rows


def after_backbone_share(stages: Dict[str, float]) -> float:
    """Share of the total spent after the backbone (head + post-processing
    + mapping back), i.e. all but normalisation and backbone + neck."""
    total = stages['total']
    return (total - stages.get(PREPROCESS, 0.0) -
            stages.get(BACKBONE, 0.0)) / total


# --------------------------------------------------------------------------
# the speed changes, one at a time
# --------------------------------------------------------------------------
#: settings of the first row (the package without these changes) and, per row, the
#: change that row adds to the one before (see :func:`change_rows`)
BEFORE_CHANGES = dict(flip_in_one_pass=False, fuse_conv_bn=False,
                      channels_last=False, nms_before_refine=False)
CHANGE_STEPS = [
    ('before: image and flip as two passes, BatchNorm kept', {}),
    ('+ image and flip in one pass (test_cfg.flip_in_one_pass)',
     dict(flip_in_one_pass=True)),
    ('+ BatchNorm folded into the convs (test_cfg.fuse_conv_bn)',
     dict(fuse_conv_bn=True)),
    ('+ channels-last weights and inputs (test_cfg.channels_last)',
     dict(channels_last=True)),
    ('+ duplicates dropped before refining (test_cfg.nms_before_refine)',
     dict(nms_before_refine=True)),
]


def change_rows() -> List[tuple]:
    """(row label, test_cfg) per row, each row's settings those of the row
    before plus its own change."""
    rows, options = [], dict(BEFORE_CHANGES)
    for label, change in CHANGE_STEPS:
        options = dict(options, **change)
        rows.append((label, options))
    return rows


CHANGE_COLUMNS = [
    Column('setting', 'setting'),
    Column('ms', 'ms/image', '{:.1f}'),
    Column('ips', 'images/s', '{:.2f}'),
    Column('refined', 'refined/image', '{:.1f}'),
    Column('backbone', 'backbone + neck ms', '{:.1f}'),
    Column('cmp', 'message passing ms', '{:.1f}'),
    Column('rest', 'rest of head ms', '{:.1f}'),
]


@torch.no_grad()
def interleaved_ms(variants: Sequence[tuple], batches: Sequence[dict],
                   warmup: int, repeats: int, device: str) -> List[float]:
    """Milliseconds per image of several (model, test options) variants,
    timed in turns (every repeat visits every variant and batch in order),
    so that a change of machine load hits all of them alike: per variant
    and batch the median of the repeats, then the mean over the batches."""
    times = [[[] for _ in batches] for _ in variants]
    for r in range(warmup + max(repeats, 1)):
        for v, (model, options) in enumerate(variants):
            with test_options(model, **options):
                for b, batch in enumerate(batches):
                    data = copy.deepcopy(batch)
                    with Stopwatch(device) as watch:
                        model.test_step(data)
                    if r >= warmup:
                        times[v][b].append(watch.seconds)
    return [1000.0 * statistics.mean(statistics.median(t) for t in per)
            for per in times]


def measure_changes(subject: Subject, forced: Optional[int], warmup: int,
                    repeats: int, device: str) -> List[dict]:
    """One row of :data:`CHANGE_COLUMNS` per row of :func:`change_rows`.

    The rows with BatchNorm folded run on a folded copy of ``subject``'s
    model (the model itself is left as it was). ms/image and images/s come
    from un-profiled runs taken in turns (:func:`interleaved_ms`); the
    stage split from one profiled run per row. ``forced``: proposals per
    image (None: the model's own decoding)."""
    from logocap_mmpose.models.fusion import fuse_for_inference
    from logocap_mmpose.models.profiling import KAM
    fused = copy.deepcopy(subject.model)
    fuse_for_inference(fused)
    fused_cl = copy.deepcopy(fused)  # converted once, by its first run
    changes = change_rows()
    variants = [((fused_cl if options['channels_last'] else fused)
                 if options['fuse_conv_bn'] else subject.model,
                 dict(options, fuse_conv_bn=False))
                for _, options in changes]
    with ExitStack() as stack:
        if forced:
            for model in (subject.model, fused, fused_cl):
                stack.enter_context(forced_proposals(model, forced))
        ms = interleaved_ms(variants, subject.batches, warmup, repeats,
                            device)
        rows = []
        for (label, _), (model, options), t in zip(changes, variants, ms):
            with test_options(model, **options):
                stages = profile_stages(model, subject.batches, warmup=1,
                                        repeats=repeats, device=device)
                refined = count_workload(model, subject.batches)
            rows.append(dict(
                setting=label, ms=t, ips=1000.0 / t, refined=refined,
                backbone=stages.get(BACKBONE, 0.0), cmp=stages.get(KAM, 0.0),
                rest=stages.get(HEAD, 0.0) - stages.get(KAM, 0.0)))
    return rows


def changes_section(rows: List[dict], forced: Optional[int]) -> List[str]:
    """The before/after table of the speed changes."""
    workload = (f'{forced} proposals forced per image' if forced else
                "the model's own proposals")
    first, last = rows[0]['ms'], rows[-1]['ms']
    return [f'## LOGO-CAP speed changes, one at a time ({workload}; ms and '
            'images/s timed in turns, stage split from profiled runs)', '',
            markdown_table(CHANGE_COLUMNS, rows), '',
            f'All changes together: {first / last:.2f}x the images per '
            'second of the first row.']


# --------------------------------------------------------------------------
# onnxruntime
# --------------------------------------------------------------------------
def onnx_unavailable(subject: Subject, device: str) -> Optional[str]:
    """Why LOGO-CAP cannot be timed in onnxruntime here (None: it can).

    A missing ``onnx`` / ``onnxruntime`` gives the one line of the
    ``ImportError`` that ``logocap_mmpose.deploy`` raises without it.
    """
    from logocap_mmpose.deploy import missing_reason
    missing = missing_reason('timing LOGO-CAP in onnxruntime '
                             '(tools/benchmark_inference.py)')
    if missing:
        return missing
    if not device.startswith('cpu'):
        return f'the installed onnxruntime runs on the CPU, not on {device}'
    return None


def time_onnx(subject: Subject, forced: Optional[int],
              **timed) -> Dict[str, Dict[str, float]]:
    """LOGO-CAP's ms/image in onnxruntime, two ways: ``'two graphs'`` (the
    dense network and the refinement, Python between them,
    ``deploy/runtime.py``) and ``'one graph'`` (the whole model,
    ``deploy/one_graph.py``); each at the model's settings (``'plain'``) and
    with ``forced`` proposals (``'forced'``). The graphs are exported from
    the model as it is (BatchNorm folded once it has predicted)."""
    from logocap_mmpose.deploy import (batch_canvas_shapes,
                                       export_dense_for_batches,
                                       export_one_graph,
                                       export_refinement_onnx,
                                       preprocess_from_config)

    from .timing import time_one_graph, time_onnxruntime
    model, batches = subject.model, subject.batches
    warmup, repeats = timed['warmup'], timed['repeats']
    preprocess = preprocess_from_config(model.cfg)
    shape = batch_canvas_shapes(batches)[0]
    two, one, ov = {}, {}, {}
    with_openvino = importlib.util.find_spec('openvino') is not None
    with tempfile.TemporaryDirectory() as tmp:
        dense = export_dense_for_batches(model, batches, tmp, preprocess)
        refinement = export_refinement_onnx(model,
                                            osp.join(tmp, 'refinement.onnx'))
        settings = [('plain', nullcontext())]
        if forced:
            settings.append(('forced', forced_proposals(model, forced)))
        for name, context in settings:
            with context:
                two[name] = time_onnxruntime(model, dense, refinement,
                                             batches, warmup, repeats)
                graph = export_one_graph(model, osp.join(tmp, f'{name}.onnx'),
                                         shape, preprocess)
                one[name] = time_one_graph(model, graph, batches, warmup,
                                           repeats)
                if with_openvino:
                    ov[name] = time_one_graph(model, graph, batches, warmup,
                                              repeats, runtime='openvino')
    out = {'two graphs': two, 'one graph': one}
    if ov:
        out['one graph, OpenVINO f32'] = ov
    return out


def onnx_lines(onnx: Dict[str, Dict[str, float]], plain: Timing,
               equal: Dict[str, Timing], forced: Optional[int]) -> List[str]:
    """PyTorch and onnxruntime (both ways) side by side for LOGO-CAP."""
    settings = [('plain', "the model's own proposals", plain)]
    if 'LOGO-CAP' in equal:
        settings.append(('forced', f'{forced} proposals forced',
                         equal['LOGO-CAP']))
    rows = []
    for key, label, timing in settings:
        for way, times in onnx.items():
            if key in times:
                rows.append(dict(setting=label, way=way,
                                 torch=timing.ms_per_image, ort=times[key],
                                 ratio=times[key] / timing.ms_per_image))
    columns = [Column('setting', 'setting'), Column('way', 'exported as, run by'),
               Column('torch', 'PyTorch ms/image', '{:.1f}'),
               Column('ort', 'exported ms/image', '{:.1f}'),
               Column('ratio', 'exported / PyTorch', '{:.2f}')]
    return ['## LOGO-CAP in PyTorch and exported (onnxruntime: two graphs '
            'with Python between them, or the whole model as one graph; '
            'the one graph in OpenVINO where installed)', '',
            markdown_table(columns, rows)]


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def input_size_of(cfg) -> str:
    """``WxH`` of the test pipeline's ``BottomupResize`` ('?' without)."""
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'BottomupResize':
            w, h = step['input_size']
            return f'{w}x{h}'
    return '?'


def timing_row(subject: Subject, timed: Timing,
               forced: Optional[int] = None) -> dict:
    """One row of the timing table (keys of ``TIMING_COLUMNS``)."""
    label = subject.key if forced is None else \
        f'{subject.key}, {forced} proposals forced'
    return dict(
        model=label,
        config=subject.name,
        input=input_size_of(subject.cfg),
        params_m=count_params(subject.model) / 1e6,
        ms=timed.ms_per_image,
        proposals=timed.proposals,
        instances=timed.instances,
        trained='yes' if subject.checkpoint else 'no (random)')


def timing_section(subjects: Dict[str, Subject], plain: Dict[str, Timing],
                   forced: Optional[int],
                   equal: Dict[str, Timing]) -> List[str]:
    """The timing table, the ratio sentences and the workload note.

    Args:
        plain: each model at its own test settings.
        forced: the proposal count of ``equal`` (None: not timed).
        equal: each model with ``forced`` proposals per image.
    """
    rows = [timing_row(subjects[k], plain[k]) for k in KEYS]
    rows += [timing_row(subjects[k], equal[k], forced) for k in equal]
    lines = [markdown_table(TIMING_COLUMNS, rows), '',
             'proposals/image: the proposals each model works on (DEKR: '
             'instances decoded before pose NMS; LOGO-CAP: proposals '
             'refined); instances/image: poses returned.', '',
             time_ratio_sentence(plain['LOGO-CAP'].ms_per_image,
                                 plain['DEKR'].ms_per_image)]
    if equal:
        lines.append(time_ratio_sentence(
            equal['LOGO-CAP'].ms_per_image, equal['DEKR'].ms_per_image,
            f'With {forced} proposals forced for both'))
    note = workload_note({k: plain[k].proposals for k in KEYS},
                         {k: bool(subjects[k].checkpoint) for k in KEYS},
                         forced if equal else None)
    if note:
        lines += ['', 'Note: ' + note]
    return lines


def breakdown_section(profiles: 'OrderedDict[int, Dict[str, float]]'
                      ) -> List[str]:
    """LOGO-CAP's Table 4 breakdown from its profiles at each proposal
    count (ordered as given)."""
    tables = OrderedDict((n, breakdown_rows(p)) for n, p in profiles.items())
    columns = [Column('stage', 'stage')]
    for num in tables:
        columns += [Column(f'ms@{num}', f'{num} {proposals_word(num)} ms',
                           '{:.1f}'),
                    Column(f'share@{num}', '%', '{:.1f}')]
    rows = []
    for label in next(iter(tables.values())):
        row = dict(stage=label)
        for num, table in tables.items():
            row[f'ms@{num}'] = table[label]
            row[f'share@{num}'] = 100 * table[label] / table['total']
        rows.append(row)
    lines = ['## LOGO-CAP breakdown (paper Table 4; profiled runs, '
             'proposals forced)', '', markdown_table(columns, rows)]
    missing = [k for k in HEAD_STAGES
               if k not in next(iter(profiles.values()))]
    if missing:
        lines += ['', f'(head ranges not found: {", ".join(missing)})']
    for num, prof in profiles.items():
        lines.append(f'\nAfter the backbone at {num} {proposals_word(num)}: '
                     f'{after_backbone_share(prof):.1%} of the total.')
    return lines


def dekr_split_line(stages: Dict[str, float], forced: Optional[int]) -> str:
    """DEKR's own backbone / head split, for reference."""
    return (f'DEKR: backbone + neck {stages.get(BACKBONE, 0.):.1f} ms, '
            f'head + decode {stages.get(HEAD, 0.):.1f} ms, after the '
            f'backbone {after_backbone_share(stages):.1%} (profiled'
            + (f', {forced} proposals forced)' if forced else ')'))


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def run_benchmark(args) -> str:
    """Time both models, add the speed changes, onnxruntime and the stage
    breakdown; print and return the report.

    Args:
        args (argparse.Namespace): the options of
            ``tools/benchmark_inference.py`` (configs, checkpoints, images,
            warm-up and repeats, proposal counts, device, threads, seed,
            sections to skip, output file).

    Returns:
        str: the markdown report.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    torch.manual_seed(args.seed)
    subjects = load_subjects(args)
    timed = dict(warmup=args.warmup, repeats=args.repeats, device=args.device)
    logocap = subjects['LOGO-CAP']
    forced = (max(args.proposals) if args.force_proposals is None else
              args.force_proposals)
    if not is_logocap(logocap.model):
        forced = None
    profiled = dict(warmup=1, repeats=args.repeats, device=args.device)
    changes = []
    if is_logocap(logocap.model) and not args.skip_changes:
        changes = measure_changes(logocap, forced, args.warmup, args.repeats,
                                  args.device)
    plain = {k: time_end_to_end(s.model, s.batches, **timed)
             for k, s in subjects.items()}
    equal = {}  # equal work: both models get `forced` proposals per image
    if forced:
        for key, subject in subjects.items():
            with forced_proposals(subject.model, forced):
                equal[key] = time_end_to_end(subject.model, subject.batches,
                                             **timed)

    onnx, onnx_note = {}, None
    if is_logocap(logocap.model) and not args.skip_onnx:
        onnx_note = onnx_unavailable(logocap, args.device)
        if onnx_note is None:
            onnx = time_onnx(logocap, forced, **timed)

    num_images = len(logocap.batches)
    lines = [f'# Inference benchmark ({args.device}, '
             f'{torch.get_num_threads()} threads, flip test on, {num_images} '
             f'images, median of {args.repeats} repeats after {args.warmup} '
             'warm-up runs)', '']
    lines += timing_section(subjects, plain, forced, equal)
    lines.append('')
    if changes:
        lines += changes_section(changes, forced) + ['']
    if onnx:
        lines += onnx_lines(onnx, plain['LOGO-CAP'], equal, forced) + ['']
    elif onnx_note:
        lines += [f'(onnxruntime not timed: {onnx_note})', '']
    if is_logocap(logocap.model):
        profiles = OrderedDict()
        for num in args.proposals:
            with forced_proposals(logocap.model, num):
                profiles[num] = profile_stages(logocap.model,
                                               logocap.batches, **profiled)
        lines += breakdown_section(profiles)
    else:
        lines.append('(first model has no LOGOCAPHead: no breakdown)')
    dekr = subjects['DEKR']
    with (forced_proposals(dekr.model, forced) if forced else nullcontext()):
        lines.append(dekr_split_line(
            profile_stages(dekr.model, dekr.batches, **profiled), forced))
    report = '\n'.join(lines)
    print(report)
    write_report(report, args.out)
    return report

