#!/usr/bin/env python
"""LOGO-CAP vs DEKR inference time, and LOGO-CAP's stage breakdown.

One run, one machine, the same images and test settings for both models:

1. End-to-end milliseconds per image of ``model.test_step`` (normalisation,
   backbone + neck on the image and its flip, head, decoding, mapping back to
   the image): ``--warmup`` untimed runs, then the median of ``--repeats``
   timed runs per image, averaged over the images. Reading and resizing the
   image (the data pipeline) is the same for both and is not timed.
2. LOGO-CAP's breakdown as in the paper's Table 4 (backbone, local KEMs,
   local KAMs, global KAMs / contextual adaptation, decode) at 1 and 30
   proposals, from ``torch.profiler`` ranges: this script marks
   ``bench/preprocess``, ``bench/backbone`` (backbone + neck, both flip
   passes) and ``bench/head``; the head marks ``logocap/local_kem``,
   ``logocap/kam``, ``logocap/global_kem_adaptation`` and ``logocap/decode``.
   Profiling adds overhead, so shares come from the profiled runs and the
   end-to-end figures from un-profiled runs.

The table states each model's workload: the proposals it works on (DEKR:
instances decoded before pose NMS; LOGO-CAP: proposals refined) and the
poses it returns. With random weights (no checkpoint) the two decoders find
different numbers of person centres (on the CPU pair: DEKR 30, LOGO-CAP 1),
so the plain rows compare unequal work; a note says so. The rows
"N proposals forced" time both with exactly N proposals per image (decoding
thresholds removed; ``--force-proposals``), i.e. equal work.

The profiler's own start/stop log lines (``USDT: ... profiler_start``) are
kept off the terminal; everything else written to stderr passes through.

Example (CPU-sized pair on coco-mini, random weights when no checkpoint)::

    python tools/benchmark_inference.py \
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \
        --data-root ../shared/data/coco-mini --num-images 10
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch

# Profiler range names. The LOGO-CAP head places the ``logocap/*`` ones.
PREPROCESS = 'bench/preprocess'
BACKBONE = 'bench/backbone'
HEAD = 'bench/head'
HEAD_STAGES = OrderedDict([
    ('logocap/local_kem', 'local KEMs'),
    ('logocap/kam', 'local KAMs (message passing)'),
    ('logocap/global_kem_adaptation', 'global KAMs / contextual adaptation'),
    ('logocap/decode', 'decode'),
])


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------
def data_root_options(cfg, data_root: str) -> Dict[str, str]:
    """``--cfg-options`` entries that point a config's datasets and COCO
    evaluators at ``data_root`` (a folder in COCO layout, e.g. coco-mini).

    Evaluator annotation files follow their dataloader's ``ann_file``.
    """
    root = data_root.rstrip('/') + '/'
    opts = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        opts[f'{split}_dataloader.dataset.data_root'] = root
        if split == 'train':
            continue
        evaluator = cfg.get(f'{split}_evaluator')
        if isinstance(evaluator, dict) and evaluator.get('ann_file'):
            opts[f'{split}_evaluator.ann_file'] = osp.join(
                root, loader['dataset']['ann_file'])
    return opts


def load_config(path: str,
                data_root: Optional[str] = None,
                cfg_options: Optional[dict] = None):
    """Load a config, then apply the data root and user overrides."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if data_root:
        cfg.merge_from_dict(data_root_options(cfg, data_root))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def is_logocap(cfg_or_model) -> bool:
    """Whether a config (or built model) has a LOGO-CAP head."""
    if isinstance(cfg_or_model, torch.nn.Module):
        return type(cfg_or_model.head).__name__ == 'LOGOCAPHead'
    return cfg_or_model.model.head.type == 'LOGOCAPHead'


def short_name(cfg_path: str) -> str:
    return osp.splitext(osp.basename(cfg_path))[0]


# --------------------------------------------------------------------------
# models and inputs
# --------------------------------------------------------------------------
def build_model(cfg, checkpoint: Optional[str], device: str):
    """Build a pose estimator for inference (``mmpose.apis.init_model``).

    Without a checkpoint the weights are random (timing only), except that a
    backbone's own pretrained weights are not loaded either.
    """
    from mmpose.apis import init_model
    cfg = copy.deepcopy(cfg)
    if 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    model = init_model(cfg, checkpoint, device=device)
    model.eval()
    return model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def val_image_paths(cfg, num_images: int) -> List[str]:
    """The first ``num_images`` images (by image id) of the config's test
    set, negatives included."""
    dataset = cfg.test_dataloader.dataset
    root = dataset.get('data_root', '')
    ann = json.load(open(osp.join(root, dataset.ann_file)))
    img_dir = osp.join(root, dataset.get('data_prefix', {}).get('img', ''))
    images = sorted(ann['images'], key=lambda im: im['id'])
    paths = [osp.join(img_dir, im['file_name']) for im in images]
    return paths[:num_images] if num_images > 0 else paths


def prepare_batches(model, img_paths: Sequence[str]) -> List[dict]:
    """Run the test pipeline once per image, as ``inference_bottomup``
    does; the returned batches are what ``model.test_step`` consumes."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    batches = []
    for path in img_paths:
        data_info = dict(img_path=path)
        data_info.update(model.dataset_meta)
        batches.append(pseudo_collate([pipeline(data_info)]))
    return batches


def set_test_options(model, **options) -> None:
    """Update the test settings seen by the estimator and its head."""
    model.test_cfg.update(options)
    head_cfg = getattr(model.head, 'test_cfg', None)
    if isinstance(head_cfg, dict) and head_cfg is not model.test_cfg:
        head_cfg.update(options)


def force_instances(model, num: int) -> None:
    """Make a bottom-up model without a LOGO-CAP head (DEKR) decode exactly
    ``num`` instances per image: its decoder (MMPose's ``SPR``) keeps the
    top ``decode_max_instances`` centres and drops those scoring at most
    ``decode_thr``; the threshold is removed. Pose NMS still applies."""
    decoder = getattr(model.head, 'decoder', None)
    if decoder is None or not hasattr(decoder, 'decode_max_instances'):
        raise ValueError(f'{type(model.head).__name__} has no decoder with '
                         '`decode_max_instances`: cannot force its count')
    decoder.decode_max_instances = num
    if hasattr(decoder, 'decode_thr'):
        decoder.decode_thr = float('-inf')


def set_num_proposals(model, num: int, force: bool = True) -> None:
    """Make LOGO-CAP refine ``num`` proposals per image.

    ``test_cfg.max_proposals`` caps the proposals; with ``force`` the
    decoder's center-score threshold is set to 0 so the cap is always
    reached (the paper times a fixed number of proposals).
    """
    set_test_options(model, max_proposals=num)
    if force:
        decoder = getattr(model.head, 'decoder', None)
        if decoder is not None and hasattr(decoder, 'decode_thr'):
            decoder.decode_thr = 0.0
        if decoder is not None and hasattr(decoder, 'decode_max_instances'):
            decoder.decode_max_instances = max(num,
                                               decoder.decode_max_instances)


@contextmanager
def quiet_profiler_output(drop: str = 'USDT:'):
    """Keep the profiler's start/stop log lines off the terminal.

    ``torch.profiler`` (Kineto) writes ``USDT: ... profiler_start`` and
    ``... profiler_stop`` straight to file descriptor 2, below Python. Inside
    this context fd 2 goes to a temporary file; on exit every line that does
    not start with ``drop`` is written to the real stderr.
    """
    import sys
    import tempfile
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


@contextmanager
def marked_ranges(model):
    """Wrap the data preprocessor, ``extract_feat`` and ``head.predict`` in
    ``torch.profiler.record_function`` ranges (undone on exit)."""
    from torch.profiler import record_function

    def wrap(obj, name, label):
        original = getattr(obj, name)

        def wrapped(*args, **kwargs):
            with record_function(label):
                return original(*args, **kwargs)

        setattr(obj, name, wrapped)
        return original

    saved = [
        (model.data_preprocessor, 'forward',
         wrap(model.data_preprocessor, 'forward', PREPROCESS)),
        (model, 'extract_feat', wrap(model, 'extract_feat', BACKBONE)),
        (model.head, 'predict', wrap(model.head, 'predict', HEAD)),
    ]
    try:
        yield
    finally:
        for obj, name, _ in saved:
            # drop the instance attribute; the class method shows again
            obj.__dict__.pop(name, None)


@contextmanager
def counted_proposals(model):
    """Record the proposals each ``test_step`` works on (the workload).

    LOGO-CAP: the proposals refined (the ``N`` of ``head._refine``, per
    image of a batch of one). Other bottom-up heads (DEKR): the instances
    their decoder returns before pose NMS (one ``decoder.decode`` per
    image). Yields a list that collects one count per call; undone on exit.
    """
    counts = []
    if is_logocap(model):
        obj, name = model.head, '_refine'

        def count(result, args):
            counts.append(int(args[3].shape[1]))  # initial: (B, N, K, 2)
    else:
        obj, name = getattr(model.head, 'decoder', None), 'decode'

        def count(result, args):
            counts.append(int(len(result[0])))

    if obj is None or not hasattr(obj, name):
        yield counts
        return
    original = getattr(obj, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        count(result, args)
        return result

    setattr(obj, name, wrapped)
    try:
        yield counts
    finally:
        obj.__dict__.pop(name, None)


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
@torch.no_grad()
def time_end_to_end(model,
                    batches: Sequence[dict],
                    warmup: int = 2,
                    repeats: int = 5,
                    device: str = 'cpu') -> Dict[str, float]:
    """Mean over images of the median (over ``repeats``) ``test_step`` time.

    Returns ms/image, the mean number of proposals worked on per image (see
    :func:`counted_proposals`) and of predicted instances.
    """
    for i in range(warmup):
        model.test_step(copy.deepcopy(batches[i % len(batches)]))
    per_image, num_instances, num_proposals = [], [], []
    with counted_proposals(model) as counts:
        for batch in batches:
            times = []
            for _ in range(repeats):
                data = copy.deepcopy(batch)
                counts.clear()
                _sync(device)
                start = time.perf_counter()
                results = model.test_step(data)
                _sync(device)
                times.append(time.perf_counter() - start)
            per_image.append(statistics.median(times))
            num_instances.append(len(results[0].pred_instances))
            num_proposals.append(sum(counts))
    return dict(
        ms_per_image=1000 * statistics.mean(per_image),
        proposals=statistics.mean(num_proposals),
        instances=statistics.mean(num_instances))


@torch.no_grad()
def profile_stages(model,
                   batches: Sequence[dict],
                   warmup: int = 1,
                   repeats: int = 3,
                   device: str = 'cpu') -> Dict[str, float]:
    """Milliseconds per image of every profiler range, plus ``total``
    (wall time of ``test_step`` inside the profiled runs)."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    with marked_ranges(model), quiet_profiler_output():
        for i in range(warmup):
            model.test_step(copy.deepcopy(batches[i % len(batches)]))
        runs = 0
        wall = 0.0
        with profile(activities=activities) as prof:
            for batch in batches:
                for _ in range(repeats):
                    data = copy.deepcopy(batch)
                    _sync(device)
                    start = time.perf_counter()
                    model.test_step(data)
                    _sync(device)
                    wall += time.perf_counter() - start
                    runs += 1
    stages = {}
    wanted = {PREPROCESS, BACKBONE, HEAD, *HEAD_STAGES}
    for event in prof.key_averages():
        if event.key in wanted:
            # inclusive CPU time of the range, in microseconds
            stages[event.key] = event.cpu_time_total / 1000.0 / runs
    stages['total'] = 1000.0 * wall / runs
    return stages


def breakdown_rows(stages: Dict[str, float]) -> 'OrderedDict[str, float]':
    """Table 4 style rows (ms/image) from :func:`profile_stages`."""
    rows = OrderedDict()
    rows['preprocess (normalise)'] = stages.get(PREPROCESS, 0.0)
    rows['backbone + neck (image and flip)'] = stages.get(BACKBONE, 0.0)
    marked = 0.0
    for key, label in HEAD_STAGES.items():
        if key in stages:
            rows[label] = stages[key]
            marked += stages[key]
    head = stages.get(HEAD, 0.0)
    rows['head: center-offset convs, un-flip, rest'] = max(head - marked, 0.)
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
# report
# --------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
    return '\n'.join(lines)


def input_size_of(cfg) -> str:
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'BottomupResize':
            w, h = step['input_size']
            return f'{w}x{h}'
    return '?'


def _proposals(num: int) -> str:
    return 'proposal' if num == 1 else 'proposals'


def time_ratio_sentence(logocap_ms: float, dekr_ms: float,
                        condition: str = '') -> str:
    """A plain sentence for the time ratio, e.g. "LOGO-CAP takes 0.44x
    DEKR's time per image." (``condition`` is prefixed when given)."""
    ratio = logocap_ms / dekr_ms
    sentence = f"LOGO-CAP takes {ratio:.2f}x DEKR's time per image."
    return f'{condition}: {sentence}' if condition else sentence


def workload_note(proposals: Dict[str, float], trained: Dict[str, bool],
                  forced: Optional[int] = None) -> str:
    """What the two models worked on, and whether that was the same.

    ``proposals``: mean proposals per image of 'DEKR' (instances decoded)
    and 'LOGO-CAP' (proposals refined), from :func:`time_end_to_end`;
    ``trained``: whether each model loaded a checkpoint; ``forced``: the
    proposal count of the equal-work rows, if timed. Empty when both models
    are trained and worked on the same number of proposals.
    """
    dekr, logocap = proposals['DEKR'], proposals['LOGO-CAP']
    random = [k for k in ('DEKR', 'LOGO-CAP') if not trained[k]]
    if not random and abs(dekr - logocap) < 0.05:
        return ''
    head = ('random weights' if len(random) == 2 else
            f'random {random[0]} weights' if random else 'trained weights')
    same = abs(dekr - logocap) < 0.05
    note = (f'{head}: DEKR finds {dekr:.1f} instances per image, LOGO-CAP '
            f'refines {logocap:.1f} proposals; timings compare '
            + ('equal numbers of proposals' if same else 'unequal work'))
    if forced:
        note += (f'. The "{forced} proposals forced" rows give both models '
                 f'{forced} proposals per image')
    return note + '.'


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='LOGO-CAP vs DEKR inference time and LOGO-CAP stage '
        'breakdown (paper Table 4), measured in one run.')
    parser.add_argument('logocap_config',
                        help='config of the LOGO-CAP model (LOGOCAPHead)')
    parser.add_argument('dekr_config',
                        help='config of the DEKR model to compare with')
    parser.add_argument(
        '--logocap-checkpoint',
        help='LOGO-CAP weights (default: random weights, timing only)')
    parser.add_argument(
        '--dekr-checkpoint',
        help='DEKR weights (default: random weights, timing only)')
    parser.add_argument(
        '--data-root',
        help='COCO-layout folder whose val images are timed (overrides the '
        'configs\' data_root), e.g. ../shared/data/coco-mini')
    parser.add_argument(
        '--img-dir', help='time these images (*.jpg) instead of the val set')
    parser.add_argument(
        '--num-images', type=int, default=10,
        help='number of images timed, the first by image id (default: 10; '
        '0: all)')
    parser.add_argument(
        '--warmup', type=int, default=2,
        help='untimed runs per model before timing (default: 2)')
    parser.add_argument(
        '--repeats', type=int, default=3,
        help='timed runs per image; the median counts (default: 3)')
    parser.add_argument(
        '--proposals', type=int, nargs='+', default=[1, 30],
        help='LOGO-CAP proposal counts of the stage breakdown (default: 1 '
        '30)')
    parser.add_argument(
        '--force-proposals', type=int, default=None,
        help='also time both models with exactly this many proposals per '
        'image (LOGO-CAP refines them, DEKR decodes them; decoding '
        'thresholds removed), i.e. equal work (default: the largest '
        '--proposals value; 0: skip)')
    parser.add_argument(
        '--device', default='cpu',
        help="torch device, e.g. 'cpu' or 'cuda:0' (default: cpu)")
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--out', help='also write the report to this file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='overrides applied to both configs')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')

    cfgs = {
        'LOGO-CAP': load_config(args.logocap_config, args.data_root,
                                args.cfg_options),
        'DEKR': load_config(args.dekr_config, args.data_root,
                            args.cfg_options),
    }
    ckpts = {'LOGO-CAP': args.logocap_checkpoint,
             'DEKR': args.dekr_checkpoint}
    names = {'LOGO-CAP': short_name(args.logocap_config),
             'DEKR': short_name(args.dekr_config)}

    if args.img_dir:
        img_paths = sorted(
            osp.join(args.img_dir, f) for f in os.listdir(args.img_dir)
            if f.lower().endswith(('.jpg', '.jpeg', '.png')))
        img_paths = img_paths[:args.num_images]
    else:
        img_paths = val_image_paths(cfgs['LOGO-CAP'], args.num_images)

    models, batches, e2e = {}, {}, {}
    for key in ('DEKR', 'LOGO-CAP'):
        model = build_model(cfgs[key], ckpts[key], args.device)
        set_test_options(model, flip_test=True)
        models[key] = model
        batches[key] = prepare_batches(model, img_paths)
        e2e[key] = time_end_to_end(model, batches[key], args.warmup,
                                   args.repeats, args.device)

    threads = torch.get_num_threads()
    lines = [
        f'# Inference benchmark ({args.device}, {threads} threads, flip '
        f'test on, {len(img_paths)} images, median of {args.repeats} '
        f'repeats after {args.warmup} warm-up runs)', ''
    ]
    rows = []
    for key in ('DEKR', 'LOGO-CAP'):
        rows.append([
            key, names[key], input_size_of(cfgs[key]),
            f'{count_params(models[key]) / 1e6:.2f}',
            f'{e2e[key]["ms_per_image"]:.1f}',
            f'{e2e[key]["proposals"]:.1f}',
            f'{e2e[key]["instances"]:.1f}',
            'yes' if ckpts[key] else 'no (random)'
        ])
    model = models['LOGO-CAP']
    forced = (max(args.proposals) if args.force_proposals is None else
              args.force_proposals)
    if forced and is_logocap(model):
        # equal work: both models get exactly `forced` proposals per image
        # (random weights find almost no centers at the default thresholds).
        # From here on LOGO-CAP's proposals stay forced (the breakdown below
        # forces them too).
        for key, force in (('DEKR', force_instances),
                           ('LOGO-CAP', set_num_proposals)):
            force(models[key], forced)
            e2e[f'{key} forced'] = time_end_to_end(
                models[key], batches[key], args.warmup, args.repeats,
                args.device)
            base = rows[0] if key == 'DEKR' else rows[1]
            timed = e2e[f'{key} forced']
            rows.append([
                f'{key}, {forced} proposals forced', names[key], base[2],
                base[3], f'{timed["ms_per_image"]:.1f}',
                f'{timed["proposals"]:.1f}', f'{timed["instances"]:.1f}',
                base[7]
            ])
    lines.append(markdown_table(
        ['model', 'config', 'input', 'params (M)', 'ms/image',
         'proposals/image', 'instances/image', 'trained weights'], rows))
    lines += ['', 'proposals/image: the proposals each model works on (DEKR: '
              'instances decoded before pose NMS; LOGO-CAP: proposals '
              'refined); instances/image: poses returned.']
    lines += ['', time_ratio_sentence(e2e['LOGO-CAP']['ms_per_image'],
                                      e2e['DEKR']['ms_per_image'])]
    if 'LOGO-CAP forced' in e2e:
        lines.append(time_ratio_sentence(
            e2e['LOGO-CAP forced']['ms_per_image'],
            e2e['DEKR forced']['ms_per_image'],
            f'With {forced} proposals forced for both'))
    note = workload_note(
        {k: e2e[k]['proposals'] for k in ('DEKR', 'LOGO-CAP')},
        {k: bool(ckpts[k]) for k in ('DEKR', 'LOGO-CAP')},
        forced if 'LOGO-CAP forced' in e2e else None)
    if note:
        lines += ['', 'Note: ' + note]
    lines.append('')

    if is_logocap(model):
        profiles = OrderedDict()
        for num in args.proposals:
            set_num_proposals(model, num)
            profiles[num] = profile_stages(model, batches['LOGO-CAP'], 1,
                                           args.repeats, args.device)
        tables = OrderedDict((n, breakdown_rows(p))
                             for n, p in profiles.items())
        header = ['stage']
        for num in tables:
            header += [f'{num} {_proposals(num)} ms', '%']
        rows = []
        for label in next(iter(tables.values())):
            row = [label]
            for num, table in tables.items():
                row += [f'{table[label]:.1f}',
                        f'{100 * table[label] / table["total"]:.1f}']
            rows.append(row)
        missing = [k for k in HEAD_STAGES
                   if k not in next(iter(profiles.values()))]
        lines.append('## LOGO-CAP breakdown (paper Table 4; profiled runs, '
                     'proposals forced)')
        lines.append('')
        lines.append(markdown_table(header, rows))
        if missing:
            lines += ['', f'(head ranges not found: {", ".join(missing)})']
        for num, prof in profiles.items():
            share = after_backbone_share(prof)
            lines.append(f'\nAfter the backbone at {num} {_proposals(num)}: '
                         f'{share:.1%} of the total.')
    else:
        lines.append('(first model has no LOGOCAPHead: no breakdown)')

    # DEKR's own split, for reference
    dekr = profile_stages(models['DEKR'], batches['DEKR'], 1, args.repeats,
                          args.device)
    lines.append(f'DEKR: backbone + neck {dekr.get(BACKBONE, 0.):.1f} ms, '
                 f'head + decode {dekr.get(HEAD, 0.):.1f} ms, after the '
                 f'backbone {after_backbone_share(dekr):.1%} (profiled'
                 + (f', {forced} proposals forced)' if 'DEKR forced' in e2e
                    else ')'))
    report = '\n'.join(lines)
    print(report)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(report + '\n')
    return report


if __name__ == '__main__':
    main()
