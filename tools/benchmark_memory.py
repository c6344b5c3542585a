#!/usr/bin/env python
"""Peak memory of LOGO-CAP and DEKR: inference and a training iteration.

Each measurement runs in a fresh Python process (so that no allocator cache
of an earlier one hides its peak), on random weights (seeded), and reports:

- ``peak RSS``: the peak resident memory of that process (``VmHWM``), i.e.
  what the machine must hold: Python, torch, the model and the phase;
- ``added``: that peak minus the RSS once the model is built (the phase's
  own working memory);
- on a CUDA device, torch's peak allocated device memory.

Phases:

- ``inference``: ``model.test_step`` on the coco-mini val image with the
  most labelled persons, with exactly ``--proposals`` proposals (30, the
  paper's cap) forced as ``tools/benchmark_inference.py`` does, three runs;
- ``train``: two ``model.train_step`` calls (the second has Adam's state)
  on one batch of the config's ``train_dataloader.batch_size`` images
  through its training pipeline, with its optimizer.

Example (the CPU-sized pair and the HRNet-W32 pair)::

    python tools/benchmark_memory.py \
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
        configs/logocap/coco/dekr_effnetlite0_1xb8-40e_coco-256x256.py \
        --data-root ../shared/data/coco-mini
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

MARK = 'MEMORY '


def busiest_val_image(cfg) -> str:
    """The val image with the most labelled persons (first by id on ties)."""
    dataset = cfg.test_dataloader.dataset
    root = dataset.get('data_root', '')
    with open(osp.join(root, dataset.ann_file)) as f:
        coco = json.load(f)
    from logocap_mmpose.analysis import is_labelled_person
    counts: Dict[int, int] = {}
    for ann in coco['annotations']:
        if is_labelled_person(ann):
            counts[ann['image_id']] = counts.get(ann['image_id'], 0) + 1
    best = min(counts, key=lambda i: (-counts[i], i))
    name = {im['id']: im['file_name'] for im in coco['images']}[best]
    return osp.join(root, dataset.get('data_prefix', {}).get('img', ''),
                    name)


def train_batch(cfg) -> dict:
    """One collated batch of ``batch_size`` training samples."""
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    size = cfg.train_dataloader.batch_size
    return pseudo_collate([dataset[i % len(dataset)] for i in range(size)])


def measure(config: str, phase: str, data_root: Optional[str], device: str,
            proposals: int, seed: int) -> dict:
    """Build the model and measure one phase (runs in the child)."""
    import torch
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import logocap_mmpose  # noqa: F401
    from logocap_mmpose.analysis.benchmark import (forced_proposals,
                                                   input_size_of)
    from logocap_mmpose import analysis
    from logocap_mmpose.analysis import memory

    cfg = analysis.load_config(config, data_root=data_root)
    torch.manual_seed(seed)
    model = analysis.build_model(cfg, None, device)
    if phase == 'inference':
        image = busiest_val_image(cfg)
        batch = analysis.prepare_batches(model, [image])[0]
        with memory.peak_memory(device) as mem, torch.no_grad(), \
                forced_proposals(model, proposals):
            for _ in range(3):
                model.test_step(dict(batch))
        mem['workload'] = (f'{proposals} proposals, '
                           f'{osp.basename(image)} at {input_size_of(cfg)}')
    else:
        from mmengine.optim import build_optim_wrapper
        batch = train_batch(cfg)
        model.train()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        with memory.peak_memory(device) as mem:
            for _ in range(2):
                model.train_step(dict(batch), optim)
        w, h = cfg.codec['input_size'] if 'codec' in cfg else ('?', '?')
        mem['workload'] = (f'batch {cfg.train_dataloader.batch_size} of '
                           f'{w}x{h}')
    return mem


def run_child(config: str, phase: str, args) -> dict:
    """:func:`measure` in a fresh process; its result dict."""
    cmd = [sys.executable, osp.abspath(__file__), config, '--child', phase,
           '--device', args.device, '--proposals', str(args.proposals),
           '--seed', str(args.seed)]
    if args.data_root:
        cmd += ['--data-root', args.data_root]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        raise RuntimeError(f'measuring {phase} of {config} failed:\n'
                           f'{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len(MARK):])


def report(rows: List[dict], cuda: bool) -> str:
    """The markdown table and the LOGO-CAP / DEKR ratio lines."""
    from logocap_mmpose.analysis import Column, markdown_table
    columns = [Column('model', 'model'), Column('phase', 'phase'),
               Column('workload', 'workload'),
               Column('peak_rss', 'peak RSS (MiB)', '{:.0f}'),
               Column('rss_added', 'added (MiB)', '{:.0f}')]
    if cuda:
        columns.append(Column('cuda_peak', 'CUDA peak (MiB)', '{:.0f}'))
    lines = [markdown_table(columns, rows)]
    by = {(r['model'], r['phase']): r for r in rows}
    names = list(dict.fromkeys(r['model'] for r in rows))
    if len(names) == 2:
        for phase in dict.fromkeys(r['phase'] for r in rows):
            a, b = by.get((names[0], phase)), by.get((names[1], phase))
            if a and b:
                peak = a['peak_rss'] / b['peak_rss']
                added = a['rss_added'] / b['rss_added']
                lines.append(f'\n{phase}: {names[0]} peak RSS {peak:.2f}x '
                             f"{names[1]}'s, working memory (added) "
                             f'{added:.2f}x')
    return '\n'.join(lines)


def parse_args(argv=None):
    from logocap_mmpose.analysis import parse_tool_args, tool_parser
    parser = tool_parser(
        'Peak memory of inference and of a training iteration, each config '
        'in a fresh process (LOGO-CAP beside DEKR).',
        configs=dict(nargs='+',
                     help='configs to measure (e.g. LOGO-CAP and DEKR)'))
    parser.add_argument('--data-root',
                        help='COCO-layout folder (overrides the configs\' '
                        'data_root), e.g. ../shared/data/coco-mini')
    parser.add_argument('--phases', nargs='+', default=['inference', 'train'],
                        choices=['inference', 'train'])
    parser.add_argument('--proposals', type=int, default=30,
                        help='proposals forced at inference (default: 30)')
    from logocap_mmpose.analysis import add_device_arguments
    add_device_arguments(parser)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='also write the report to this file')
    parser.add_argument('--child', choices=['inference', 'train'],
                        help=argparse.SUPPRESS)
    return parse_tool_args(parser, argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.child:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        result = measure(args.configs[0], args.child, args.data_root,
                         args.device, args.proposals, args.seed)
        print(MARK + json.dumps(result), flush=True)
        return ''
    from logocap_mmpose.analysis import short_name, write_report
    rows = []
    for config in args.configs:
        for phase in args.phases:
            row = run_child(config, phase, args)
            row.update(model=short_name(config), phase=phase)
            rows.append(row)
            print(f'{row["model"]} {phase}: peak RSS '
                  f'{row["peak_rss"]:.0f} MiB', file=sys.stderr, flush=True)
    text = report(rows, str(args.device).startswith('cuda'))
    print(text)
    write_report(text, args.out)
    return text


if __name__ == '__main__':
    main()
