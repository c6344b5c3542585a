"""tools/compare_with_dekr.py, tools/benchmark_inference.py and the module
they share, ``logocap_mmpose/utils/analysis.py``.

Fast tests check the config pairing, the shared pieces (tables by column
key, settings restored on exit, warm-up and median of the timing loop on a
fake clock, the workload counts) and the report arithmetic; slow ones
(``-m slow``) run both tools end to end on ../shared/data/coco-mini with a
tiny budget (a few images, one or two iterations). No timing assertions:
timings are reported, never tested.
"""
import argparse
import copy
import glob
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from logocap_mmpose.analysis import benchmark as bench
from logocap_mmpose.analysis import compare
from logocap_mmpose.models import profiling
from logocap_mmpose import analysis
from tests.conftest import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')



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
        if osp.basename(osp.dirname(path)) == '_base_':
            continue  # shared settings, not a model
        # a width variant of a config ('-cmp512') shares its DEKR peer
        name = re.sub(r'-cmp\d+', '', osp.basename(path))
        peer = osp.join(osp.dirname(path),
                        name.replace('logocap_', 'dekr_', 1))
        pairs.append((path, peer))
    return pairs


PAIRS = logocap_dekr_pairs()


def test_every_logocap_config_has_a_dekr_peer():
    assert len(PAIRS) >= 5  # COCO and OCHuman; more datasets may come
    assert CPU_PAIR in PAIRS
    for _, peer in PAIRS:
        assert osp.exists(peer), peer


@pytest.mark.parametrize('pair', PAIRS,
                         ids=[osp.basename(p[0]) for p in PAIRS])
def test_pairs_match_for_a_fair_comparison(pair):
    cfg_a = analysis.load_config(pair[0])
    cfg_b = analysis.load_config(pair[1])
    report = compare.matching_report(cfg_a, cfg_b)
    assert [name for name, same in report if not same] == []
    assert analysis.is_logocap(cfg_a) and not analysis.is_logocap(cfg_b)
    assert cfg_b.model.head.type == 'DEKRHead'


def test_matching_report_detects_differences():
    cfg_a = analysis.load_config(CPU_PAIR[0])
    cfg_b = analysis.load_config(CPU_PAIR[1], cfg_options={
        'train_dataloader.batch_size': 4,
        'model.backbone.frozen_stages': 1
    })
    differ = {name for name, same in compare.matching_report(cfg_a, cfg_b)
              if not same}
    assert differ == {'batch size', 'backbone'}


def test_data_root_options(tmp_path):
    root = str(tmp_path / 'coco-mini')  # a folder: a missing one raises
    (tmp_path / 'coco-mini').mkdir()
    cfg = analysis.load_config(CPU_PAIR[0])
    opts = analysis.data_root_options(cfg, root)
    assert opts['train_dataloader.dataset.data_root'] == root + '/'
    assert opts['test_dataloader.dataset.data_root'] == root + '/'
    assert opts['val_evaluator.ann_file'] == \
        root + '/annotations/person_keypoints_val2017.json'
    cfg = analysis.load_config(CPU_PAIR[0], data_root=root)
    assert cfg.val_dataloader.dataset.data_root == root + '/'
    assert cfg.test_evaluator.ann_file == opts['test_evaluator.ann_file']


def test_breakdown_arithmetic():
    stages = {
        profiling.PREPROCESS: 1.0,
        profiling.BACKBONE: 60.0,
        profiling.HEAD: 30.0,
        profiling.LOCAL_KEM: 3.0,
        profiling.KAM: 2.0,
        profiling.GLOBAL_KEM_ADAPTATION: 4.0,
        profiling.DECODE: 1.0,
        profiling.DENSE: 12.0,
        profiling.POSE_NMS: 2.0,
        'total': 100.0,
    }
    rows = bench.breakdown_rows(stages)
    assert rows['backbone + neck (image and flip)'] == 60.0
    assert rows['local KEMs'] == 3.0
    assert rows['head: heatmap, offset, embedding convs and un-flip'] == 12.0
    assert rows['head: rest (proposal bookkeeping)'] == 6.0
    assert rows['mapping to image, bookkeeping'] == 9.0
    assert rows['total'] == 100.0
    assert bench.after_backbone_share(stages) == pytest.approx(0.39)


def test_range_names_are_defined_once():
    """The benchmark reads the names the estimator and the head open."""
    assert bench.PREPROCESS is profiling.PREPROCESS
    assert bench.HEAD_STAGES is profiling.HEAD_STAGES
    names = [profiling.PREPROCESS, profiling.BACKBONE, profiling.HEAD,
             *profiling.HEAD_STAGES]
    assert len(set(names)) == len(names) == 9
    assert list(profiling.HEAD_STAGES) == [
        profiling.DENSE, profiling.LOCAL_KEM, profiling.KAM,
        profiling.GLOBAL_KEM_ADAPTATION, profiling.DECODE, profiling.POSE_NMS]


def test_no_tool_edits_sys_path():
    for name in ('benchmark_inference', 'compare_with_dekr', 'fit_check',
                 'count_flops', 'benchmark_memory'):
        with open(osp.join(TOOLS, f'{name}.py')) as f:
            assert 'sys.path' not in f.read(), name


# --------------------------------------------------------------------------
# the shared module: tables
# --------------------------------------------------------------------------
def test_markdown_table_reads_rows_by_column_key():
    columns = [analysis.Column('b', 'B'), analysis.Column('a', 'A', '{:.2f}')]
    table = analysis.markdown_table(
        columns, [dict(a=1.0, b='x', ignored=5), dict(b=2), dict(a=None)])
    assert table.splitlines() == ['| B | A |', '|---|---|', '| x | 1.00 |',
                                  '| 2 | - |', '| - | - |']


def test_markdown_table_without_rows():
    assert analysis.markdown_table([analysis.Column('a', 'A')], []) == \
        '| A |\n|---|'


def test_ratio_sentence_is_plain():
    sentence = analysis.time_ratio_sentence(44.0, 100.0)
    assert sentence == "LOGO-CAP takes 0.44x DEKR's time per image."
    assert analysis.time_ratio_sentence(
        50.0, 25.0, 'With 30 proposals forced') == \
        "With 30 proposals forced: LOGO-CAP takes 2.00x DEKR's time per " \
        'image.'
    for word in ('target', 'met'):
        assert word not in sentence.lower().split()


def test_workload_note():
    random = {'DEKR': False, 'LOGO-CAP': False}
    note = analysis.workload_note({'DEKR': 0.0, 'LOGO-CAP': 30.0}, random, 30)
    assert note.startswith('random weights: DEKR finds 0.0 instances per '
                           'image, LOGO-CAP refines 30.0 proposals; timings '
                           'compare unequal work.')
    assert '30 proposals forced' in note
    # trained and equal: nothing to say
    trained = {'DEKR': True, 'LOGO-CAP': True}
    assert analysis.workload_note({'DEKR': 5.0, 'LOGO-CAP': 5.0},
                                 trained) == ''
    assert 'unequal work' in analysis.workload_note(
        {'DEKR': 3.0, 'LOGO-CAP': 12.0}, trained)
    # random weights are always stated, even for equal counts
    assert analysis.workload_note({'DEKR': 30.0, 'LOGO-CAP': 30.0},
                                 random).startswith('random weights')
    assert analysis.workload_note({'DEKR': 30.0, 'LOGO-CAP': 30.0},
                                 {'DEKR': True, 'LOGO-CAP': False}
                                 ).startswith('random LOGO-CAP weights')


# --------------------------------------------------------------------------
# the shared module: settings undone on exit
# --------------------------------------------------------------------------
class _Head(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.test_cfg = dict(nms_dist_thr=0.05)


class _Estimator(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.test_cfg = dict(flip_test=True)
        self.head = _Head()


def test_test_options_are_restored():
    model = _Estimator()
    with analysis.test_options(model, flip_test=False, max_proposals=3):
        assert model.test_cfg == dict(flip_test=False, max_proposals=3)
        assert model.head.test_cfg == dict(nms_dist_thr=0.05,
                                           flip_test=False, max_proposals=3)
    assert model.test_cfg == dict(flip_test=True)  # absent keys removed
    assert model.head.test_cfg == dict(nms_dist_thr=0.05)
    with pytest.raises(RuntimeError):
        with analysis.test_options(model, nms_dist_thr=0):
            raise RuntimeError('inside')
    assert model.head.test_cfg == dict(nms_dist_thr=0.05)
    analysis.set_test_options(model, flip_test=False)  # for good
    assert not model.test_cfg['flip_test']
    assert not model.head.test_cfg['flip_test']


def test_overridden_restores_and_rejects_unknown_attributes():
    obj = argparse.Namespace(decode_thr=0.01, decode_max_instances=30)
    with pytest.raises(ValueError):
        with analysis.overridden(obj, decode_thr=0.0) as inside:
            assert inside.decode_thr == 0.0
            raise ValueError('inside')
    assert obj.decode_thr == 0.01
    with pytest.raises(AttributeError, match='decode_thresh'):
        with analysis.overridden(obj, decode_max_instances=1,
                                decode_thresh=0.0):
            pass
    assert obj.decode_max_instances == 30


# --------------------------------------------------------------------------
# the shared module: timing on a fake clock
# --------------------------------------------------------------------------
class _Clock:
    """perf_counter stand-in that moves only when a fake step runs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _TimedModel:
    """``test_step`` of batch ``dict(name=...)`` takes the next of that
    name's durations on the fake clock and records the call."""

    def __init__(self, clock, durations):
        self.clock = clock
        self.durations = durations
        self.calls = []

    def test_step(self, data):
        self.calls.append(data['name'])
        self.clock.now += self.durations[data['name']].pop(0)
        data['touched'] = True  # the real preprocessor changes its input
        return [argparse.Namespace(pred_instances=[0] * data['poses'])]


def test_time_test_step_warms_up_then_takes_medians(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(analysis.timing.time, 'perf_counter', clock)
    # seconds: 9 s warm-up runs, then three timed runs of each image
    model = _TimedModel(clock, dict(a=[9, 9, 0.003, 0.001, 0.002],
                                    b=[9, 0.005, 0.007, 0.006]))
    batches = [dict(name='a', poses=2, inputs=[0]),
               dict(name='b', poses=4, inputs=[0])]
    ms, results = analysis.time_test_step(model, batches, warmup=3,
                                         repeats=3)
    # warm-up cycles over the batches, then 3 timed runs each
    assert model.calls == ['a', 'b', 'a'] + ['a'] * 3 + ['b'] * 3
    # medians 2 ms and 6 ms (the warm-up is not timed); their mean
    assert ms == pytest.approx(4.0)
    assert [len(r[0].pred_instances) for r in results] == [2, 4]
    assert 'touched' not in batches[0]  # every run got a copy


def test_stopwatch_reads_the_clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(analysis.timing.time, 'perf_counter', clock)
    clock.now = 10.0
    with analysis.Stopwatch('cpu') as watch:
        clock.now = 12.5
    assert watch.seconds == 2.5


# --------------------------------------------------------------------------
# real models on a synthetic image (no ../shared needed)
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    import cv2
    path = str(tmp_path_factory.mktemp('img') / 'noise.jpg')
    rng = np.random.default_rng(0)
    cv2.imwrite(path, rng.integers(0, 255, (200, 240, 3), dtype=np.uint8))
    return path


@pytest.fixture(scope='module')
def cpu_models(image_path):
    """Both CPU models as the benchmark builds them (random weights, flip
    test on) with one test batch each."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    models = {}
    for key, path in zip(('LOGO-CAP', 'DEKR'), CPU_PAIR):
        cfg = bench.profiled_config(analysis.load_config(path))
        model = analysis.build_model(cfg, None, 'cpu')
        analysis.set_test_options(model, flip_test=True)
        models[key] = (model, analysis.prepare_batches(model, [image_path]))
    return models


def test_dekr_is_profiled_in_the_logocap_estimator(cpu_models):
    cfg = analysis.load_config(CPU_PAIR[1])
    assert cfg.model.type == 'BottomupPoseEstimator'
    assert bench.profiled_config(cfg).model.type == 'LOGOCAPPoseEstimator'
    assert cfg.model.type == 'BottomupPoseEstimator'  # not modified
    model = cpu_models['DEKR'][0]
    assert type(model).__name__ == 'LOGOCAPPoseEstimator'
    assert type(model.head).__name__ == 'DEKRHead'


@pytest.mark.float_bound
@pytest.mark.parametrize('key', ['LOGO-CAP', 'DEKR'])
def test_estimator_ranges_do_not_change_the_poses(cpu_models, key):
    """LOGOCAPPoseEstimator's own single-size predict (with the ranges)
    gives MMPose's BottomupPoseEstimator.predict poses, flip test on.

    Both pass the image and its flip separately here (MMPose's way), so the
    two run the same kernels on the same batches and must agree exactly on
    any CPU. With the flip in the same batch the convolutions round
    differently, and the random weights' flat maps turn that into other
    keypoints (measured with 2 threads under ATEN_CPU_CAPABILITY=avx2:
    28% of them moved); the one-pass flip has its own test with clear
    peaks (test_inference_speed.py)."""
    from mmpose.models.pose_estimators import BottomupPoseEstimator
    model, batches = cpu_models[key]
    one_pass = model.test_cfg.get('flip_in_one_pass', True)
    model.test_cfg['flip_in_one_pass'] = False
    try:
        with torch.no_grad():
            data = model.data_preprocessor(copy.deepcopy(batches[0]), False)
            ours = model.predict(data['inputs'], copy.deepcopy(
                data['data_samples']))
            mmpose = BottomupPoseEstimator.predict(
                model, data['inputs'], copy.deepcopy(data['data_samples']))
    finally:
        model.test_cfg['flip_in_one_pass'] = one_pass
    a, b = ours[0].pred_instances, mmpose[0].pred_instances
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.keypoint_scores, b.keypoint_scores)


@pytest.mark.parametrize('key', ['LOGO-CAP', 'DEKR'])
def test_profile_finds_every_range(cpu_models, key):
    model, batches = cpu_models[key]
    stages = bench.profile_stages(model, batches, warmup=0, repeats=1)
    for name in (profiling.PREPROCESS, profiling.BACKBONE, profiling.HEAD):
        assert stages[name] > 0, name
    head_stages = [name for name in profiling.HEAD_STAGES if name in stages]
    assert head_stages == (list(profiling.HEAD_STAGES)
                           if key == 'LOGO-CAP' else [])
    # nested: the head's stages inside the head, all inside the step
    assert sum(stages[name] for name in head_stages) <= \
        stages[profiling.HEAD] < stages['total']


@pytest.mark.parametrize('key,num', [('LOGO-CAP', 5), ('DEKR', 7)])
def test_forced_proposals_are_counted_and_undone(cpu_models, key, num):
    model, batches = cpu_models[key]
    decoder = model.head.decoder
    before = (copy.deepcopy(model.test_cfg), decoder.decode_max_instances,
              decoder.decode_thr)
    with bench.forced_proposals(model, num):
        # LOGO-CAP: inputs of the message passing; DEKR: decoded instances
        assert analysis.count_workload(model, batches) == num
        if key == 'LOGO-CAP':
            assert model.test_cfg['max_proposals'] == num
            assert decoder.decode_thr == 0.0
        else:
            assert decoder.decode_max_instances == num
            assert decoder.decode_thr == float('-inf')
        timed = analysis.time_end_to_end(model, batches, warmup=0, repeats=1)
        assert timed.proposals == num and timed.instances <= num
    assert (model.test_cfg, decoder.decode_max_instances,
            decoder.decode_thr) == before
    # the counting pass leaves pose NMS as it was
    assert model.test_cfg.get('nms_dist_thr') == before[0].get(
        'nms_dist_thr')


def test_forced_proposals_need_a_counting_decoder():
    model = _Estimator()
    with pytest.raises(ValueError, match='cannot force'):
        with bench.forced_proposals(model, 3):
            pass


@pytest.mark.parametrize('module', ['bench', 'compare', 'count_flops'])
def test_every_option_has_help(module):
    module = load_tool({'bench': 'benchmark_inference',
                        'compare': 'compare_with_dekr',
                        'count_flops': 'count_flops'}[module])
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
    assert len(options) >= 6
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


def test_profiler_log_lines_are_silenced():
    """torch.profiler writes ``USDT: ... profiler_start/stop`` to fd 2; the
    benchmark drops those lines and keeps any other stderr output."""
    code = (
        'import sys, torch\n'
        'from logocap_mmpose.analysis import benchmark as bench\n'
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
    assert lines[0] == ('| model | pose score | AP | AP50 | AP75 | APM | '
                        'APL | AR | ms/image | proposals/image | '
                        'instances/image | params (M) |')
    rows = [line for line in lines[2:] if line.startswith('| ')]
    assert len(rows) == 3
    assert rows[0].startswith('| DEKR (')
    assert rows[1].startswith('| LOGO-CAP, full (')
    assert rows[2].startswith('| LOGO-CAP ablation: center-offset baseline')
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert len(cells) == 12
        for cell in cells[2:]:
            float(cell)  # every metric, time and size was measured
    # a DEKR trained here has no rescore net: the table says so
    assert 'no rescore net in the checkpoint' in rows[0]
    assert rows[1].split('|')[2].strip() == 'heatmap x centre'
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
        cfg = analysis.load_config(cfg_path)
        model = analysis.build_model(cfg, None, 'cpu')
        path = tmp_path / (osp.basename(cfg_path) + '.pth')
        torch.save({'state_dict': model.state_dict()}, path)
        ckpts.append(str(path))
    out = run([
        sys.executable, osp.join(TOOLS, 'compare_with_dekr.py'), *CPU_PAIR,
        '--logocap-checkpoint', ckpts[0], '--dekr-checkpoint', ckpts[1],
        '--data-root', COCO_MINI, '--work-dir', str(tmp_path / 'work'),
        '--time-images', '1', '--warmup', '0', '--repeats', '1',
        '--ablation-modes', 'kams_only', '--cfg-options', *TINY
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
    # the speed changes one at a time, each row with its proposals refined
    changes = report.split('## LOGO-CAP speed changes')[1].split('##')[0]
    rows = [line for line in changes.splitlines()
            if line.startswith(('| before', '| +'))]
    assert len(rows) == 5
    assert 'test_cfg.channels_last' in rows[3]
    assert all(line.split('|')[4].strip() == '30.0' for line in rows[:4])
    # PyTorch and the exported model side by side, two graphs and one (the
    # set-up installs onnxruntime and OpenVINO)
    assert '| exported / PyTorch |' in report
    for way in ('two graphs', 'one graph', 'one graph, OpenVINO f32'):
        assert f"| the model's own proposals | {way} |" in report


def test_dekr_is_rescored_only_with_the_nets_weights():
    """MMPose's rescore net scores DEKR when the checkpoint carries its
    weights (``head.rescore_net.*``), with MMPose's COCO or CrowdPose net
    shape and no download; the table names the score either way."""
    from logocap_mmpose.analysis.compare import (logocap_score,
                                                 use_dekr_rescoring)
    cfg = analysis.load_config(CPU_PAIR[1])
    assert cfg.model.head.rescore_cfg is None
    said = use_dekr_rescoring(cfg, ['head.heatmap_head.0.weight'])
    assert 'no rescore net' in said and cfg.model.head.rescore_cfg is None
    said = use_dekr_rescoring(cfg, ['head.rescore_net.l1.weight'])
    assert said == 'rescore net (from the checkpoint)'
    assert cfg.model.head.rescore_cfg == dict(in_channels=74,
                                              norm_indexes=(5, 6))
    model = analysis.build_model(cfg, None, 'cpu')
    assert model.head.rescore_net is not None
    logocap = analysis.load_config(CPU_PAIR[0])
    assert logocap_score(logocap) == 'heatmap x centre'
    logocap.model.test_cfg.update(pose_score='product', kam_score='product')
    assert logocap_score(logocap) == ('heatmap x centre x learned quality, '
                                      'kam_score=product')
