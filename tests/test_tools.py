"""tools/compare_with_dekr.py and tools/benchmark_inference.py.

Fast tests check the config pairing and the report arithmetic; slow ones
(``-m slow``) run both tools end to end on ../shared/data/coco-mini with a
tiny budget (a few images, one or two iterations). No timing assertions:
timings are reported, never tested.
"""
import glob
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools')
sys.path.insert(0, TOOLS)

import benchmark_inference as bench  # noqa: E402
import compare_with_dekr as compare  # noqa: E402

DATA = osp.normpath(osp.join(ROOT, '..', 'shared', 'data'))
COCO_MINI = osp.join(DATA, 'coco-mini')
CONFIG_DIR = osp.join(ROOT, 'configs', 'logocap')
needs_data = pytest.mark.skipif(
    not osp.isdir(COCO_MINI),
    reason=f'real test data not found at {COCO_MINI} (../shared/data is '
    'absent in this checkout)')
slow = pytest.mark.slow

CPU_PAIR = (osp.join(CONFIG_DIR, 'coco',
                     'logocap_effnetlite0_1xb8-40e_coco-256x256.py'),
            osp.join(CONFIG_DIR, 'coco',
                     'dekr_effnetlite0_1xb8-40e_coco-256x256.py'))


def logocap_dekr_pairs():
    pairs = []
    for path in sorted(glob.glob(osp.join(CONFIG_DIR, '**', 'logocap_*.py'),
                                 recursive=True)):
        if '_official_' in path:
            continue  # evaluation of the authors' weights, nothing to train
        peer = osp.join(osp.dirname(path),
                        osp.basename(path).replace('logocap_', 'dekr_', 1))
        pairs.append((path, peer))
    return pairs


PAIRS = logocap_dekr_pairs()


def test_every_logocap_config_has_a_dekr_peer():
    assert len(PAIRS) == 5
    for _, peer in PAIRS:
        assert osp.exists(peer), peer


@pytest.mark.parametrize('pair', PAIRS,
                         ids=[osp.basename(p[0]) for p in PAIRS])
def test_pairs_match_for_a_fair_comparison(pair):
    cfg_a = bench.load_config(pair[0])
    cfg_b = bench.load_config(pair[1])
    report = compare.matching_report(cfg_a, cfg_b)
    assert [name for name, same in report if not same] == []
    assert bench.is_logocap(cfg_a) and not bench.is_logocap(cfg_b)
    assert cfg_b.model.head.type == 'DEKRHead'


def test_matching_report_detects_differences():
    cfg_a = bench.load_config(CPU_PAIR[0])
    cfg_b = bench.load_config(CPU_PAIR[1], cfg_options={
        'train_dataloader.batch_size': 4,
        'model.backbone.frozen_stages': 1
    })
    differ = {name for name, same in compare.matching_report(cfg_a, cfg_b)
              if not same}
    assert differ == {'batch size', 'backbone'}


def test_data_root_options():
    cfg = bench.load_config(CPU_PAIR[0])
    opts = bench.data_root_options(cfg, '/x/coco-mini')
    assert opts['train_dataloader.dataset.data_root'] == '/x/coco-mini/'
    assert opts['test_dataloader.dataset.data_root'] == '/x/coco-mini/'
    assert opts['val_evaluator.ann_file'] == \
        '/x/coco-mini/annotations/person_keypoints_val2017.json'
    cfg = bench.load_config(CPU_PAIR[0], data_root='/x/coco-mini')
    assert cfg.val_dataloader.dataset.data_root == '/x/coco-mini/'
    assert cfg.test_evaluator.ann_file == opts['test_evaluator.ann_file']


def test_breakdown_arithmetic():
    stages = {
        bench.PREPROCESS: 1.0,
        bench.BACKBONE: 60.0,
        bench.HEAD: 30.0,
        'logocap/local_kem': 3.0,
        'logocap/kam': 2.0,
        'logocap/global_kem_adaptation': 4.0,
        'logocap/decode': 1.0,
        'total': 100.0,
    }
    rows = bench.breakdown_rows(stages)
    assert rows['backbone + neck (image and flip)'] == 60.0
    assert rows['local KEMs'] == 3.0
    assert rows['head: center-offset convs, un-flip, rest'] == 20.0
    assert rows['mapping to image, bookkeeping'] == 9.0
    assert rows['total'] == 100.0
    assert bench.after_backbone_share(stages) == pytest.approx(0.39)


def test_markdown_table():
    table = bench.markdown_table(['a', 'b'], [[1, 2], ['x', 'y']])
    assert table.splitlines() == ['| a | b |', '|---|---|', '| 1 | 2 |',
                                  '| x | y |']


def test_ratio_sentence_is_plain():
    sentence = bench.time_ratio_sentence(44.0, 100.0)
    assert sentence == "LOGO-CAP takes 0.44x DEKR's time per image."
    assert bench.time_ratio_sentence(50.0, 25.0, 'With 30 proposals forced') \
        == "With 30 proposals forced: LOGO-CAP takes 2.00x DEKR's time per " \
        'image.'
    for word in ('target', 'met'):
        assert word not in sentence.lower().split()


def test_workload_note():
    random = {'DEKR': False, 'LOGO-CAP': False}
    note = bench.workload_note({'DEKR': 0.0, 'LOGO-CAP': 30.0}, random, 30)
    assert note.startswith('random weights: DEKR finds 0.0 instances per '
                           'image, LOGO-CAP refines 30.0 proposals; timings '
                           'compare unequal work.')
    assert '30 proposals forced' in note
    # trained and equal: nothing to say
    trained = {'DEKR': True, 'LOGO-CAP': True}
    assert bench.workload_note({'DEKR': 5.0, 'LOGO-CAP': 5.0}, trained) == ''
    assert 'unequal work' in bench.workload_note(
        {'DEKR': 3.0, 'LOGO-CAP': 12.0}, trained)
    # random weights are always stated, even for equal counts
    assert bench.workload_note({'DEKR': 30.0, 'LOGO-CAP': 30.0},
                               random).startswith('random weights')


@pytest.mark.parametrize('module', [bench, compare])
def test_every_option_has_help(module):
    import argparse
    parser = None
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        nonlocal parser
        parser = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            module.parse_args(['a.py', 'b.py'])
    finally:
        argparse.ArgumentParser.parse_args = original
    options = [a for a in parser._actions if a.dest != 'help']
    assert len(options) >= 8
    undocumented = [a.dest for a in options if not a.help]
    assert undocumented == []


def test_codec_benchmark_options_have_help():
    out = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'benchmark_codec.py'), '--help'],
        cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, timeout=300).stdout
    for option, text in (('--persons', 'random persons'),
                         ('--repeats', 'the median counts'),
                         ('--seed', 'seed of the random keypoints')):
        assert option in out and text in out


def test_force_instances_sets_the_dekr_decoder():
    cfg = bench.load_config(CPU_PAIR[1])
    model = bench.build_model(cfg, None, 'cpu')
    bench.force_instances(model, 7)
    assert model.head.decoder.decode_max_instances == 7
    assert model.head.decoder.decode_thr == float('-inf')


def test_profiler_log_lines_are_silenced():
    """torch.profiler writes ``USDT: ... profiler_start/stop`` to fd 2; the
    benchmark drops those lines and keeps any other stderr output."""
    code = (
        'import sys, torch\n'
        f'sys.path.insert(0, {TOOLS!r})\n'
        'import benchmark_inference as bench\n'
        'from torch.profiler import profile\n'
        'with bench.quiet_profiler_output():\n'
        '    with profile():\n'
        '        torch.ones(3) + 1\n'
        "    print('kept line', file=sys.stderr)\n"
        "print('done')\n")
    proc = subprocess.run([sys.executable, '-c', code], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'done'
    assert 'USDT' not in proc.stderr
    assert 'profiler_start' not in proc.stderr
    assert 'kept line' in proc.stderr


# --------------------------------------------------------------------------
# end to end (slow)
# --------------------------------------------------------------------------
TINY = [
    'train_dataloader.batch_size=2',
    'train_dataloader.dataset.indices=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'test_dataloader.dataset.indices=4',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
]


def run(cmd) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, text=True, timeout=1200,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        pytest.fail(f'command failed ({proc.returncode}): {" ".join(cmd)}\n'
                    f'{proc.stdout[-6000:]}')
    return proc.stdout


@needs_data
@slow
def test_compare_with_dekr_end_to_end(tmp_path):
    """Trains both (one iteration each), evaluates, times, one table."""
    out_file = tmp_path / 'table.md'
    out = run([
        sys.executable, osp.join(TOOLS, 'compare_with_dekr.py'), *CPU_PAIR,
        '--data-root', COCO_MINI, '--epochs', '1', '--work-dir',
        str(tmp_path / 'work'), '--time-images', '2', '--warmup', '1',
        '--repeats', '1', '--out', str(out_file), '--cfg-options', *TINY
    ])
    assert 'eta:' in out  # MMEngine's training progress was shown
    table = out_file.read_text()
    assert table.strip() in out
    lines = table.splitlines()
    assert lines[0] == ('| model | AP | AP50 | AP75 | APM | APL | AR | '
                        'ms/image | instances/image | params (M) |')
    rows = [line for line in lines[2:] if line.startswith('| ')]
    assert len(rows) == 3
    assert rows[0].startswith('| DEKR (')
    assert rows[1].startswith('| LOGO-CAP, full (')
    assert rows[2].startswith('| LOGO-CAP ablation: center-offset baseline')
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert len(cells) == 10
        for cell in cells[1:]:
            float(cell)  # every metric, time and size was measured
    # the ablation row uses the same weights as the full model
    assert rows[1].split('|')[-2] == rows[2].split('|')[-2]
    assert '4 images' in table
    assert "Full models: LOGO-CAP takes " in table
    assert "x DEKR's time per image." in table
    # the same budget, read back from both checkpoints
    assert ('LOGO-CAP: epoch 1, 1 iterations of 2 images; DEKR: epoch 1, 1 '
            'iterations of 2 images)') in table
    assert 'NOT trained with the same budget' not in table
    for key in ('logocap', 'dekr'):
        assert (tmp_path / 'work' / key / 'epoch_1.pth').exists()


@needs_data
@slow
def test_compare_with_dekr_given_checkpoints(tmp_path):
    """With checkpoints nothing is trained (here: random-init weights saved
    with torch.save, as ``init_model`` would load any state dict)."""
    import torch
    ckpts = []
    for cfg_path in CPU_PAIR:
        cfg = bench.load_config(cfg_path)
        model = bench.build_model(cfg, None, 'cpu')
        path = tmp_path / (osp.basename(cfg_path) + '.pth')
        torch.save({'state_dict': model.state_dict()}, path)
        ckpts.append(str(path))
    out = run([
        sys.executable, osp.join(TOOLS, 'compare_with_dekr.py'), *CPU_PAIR,
        '--logocap-checkpoint', ckpts[0], '--dekr-checkpoint', ckpts[1],
        '--data-root', COCO_MINI, '--work-dir', str(tmp_path / 'work'),
        '--time-images', '1', '--warmup', '0', '--repeats', '1',
        '--ablation-modes', 'baseline', 'kams_only', '--cfg-options', *TINY
    ])
    assert 'Epoch(train)' not in out
    assert ('Training: given checkpoints (LOGO-CAP: not recorded; DEKR: '
            'not recorded).') in out
    assert 'LOGO-CAP ablation: KAMs only (same weights)' in out


@needs_data
@slow
def test_benchmark_inference_end_to_end(tmp_path):
    out_file = tmp_path / 'bench.md'
    out = run([
        sys.executable, osp.join(TOOLS, 'benchmark_inference.py'), *CPU_PAIR,
        '--data-root', COCO_MINI, '--num-images', '2', '--warmup', '1',
        '--repeats', '1', '--proposals', '1', '30', '--out', str(out_file)
    ])
    report = out_file.read_text()
    assert report.strip() in out
    assert 'USDT' not in out and 'profiler_start' not in out
    for wording in ('target', 'NOT met', '-> met'):
        assert wording not in report
    assert ('| model | config | input | params (M) | ms/image | '
            'proposals/image | instances/image | trained weights |') in report
    assert "\nLOGO-CAP takes " in report
    assert ("With 30 proposals forced for both: LOGO-CAP takes ") in report
    assert 'Note: random weights: DEKR finds ' in report
    forced = [line for line in report.splitlines()
              if ', 30 proposals forced |' in line]
    assert len(forced) == 2  # DEKR and LOGO-CAP, equal work
    for line in forced:
        assert line.split('|')[6].strip() == '30.0'  # proposals/image
    assert '| stage | 1 proposal ms | % | 30 proposals ms | % |' in report
    for label in ('backbone + neck (image and flip)', 'local KEMs',
                  'local KAMs (message passing)',
                  'global KAMs / contextual adaptation', 'decode', 'total'):
        assert f'| {label} |' in report
    assert 'head ranges not found' not in report  # the head marks its stages
    assert 'After the backbone at 30 proposals:' in report
