"""logocap_mmpose/analysis/flops.py and its CLI tools/count_flops.py: FLOPs
with the refinement (paper Table 4 rows).

The CMP count is checked against a hand computation from the block widths,
the documented derivations (KEM sampling, adaptation) against MMEngine's
analyzer on the real functions, the refinement for linearity in the
proposals, and the dense part against MMPose's ``get_flops`` procedure: the
total exceeds it by exactly the refinement.
"""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from logocap_mmpose.models.adaptation import contextual_adaptation
from logocap_mmpose.models.kem import sample_global_kems, sample_local_kems
from logocap_mmpose.models.message_passing import ConvMessagePassing
from logocap_mmpose import analysis
from logocap_mmpose.analysis import flops
from tests.conftest import REPO, load_tool

flops_tool = load_tool('count_flops')

CPU_CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
                   'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
W32_CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
                   'logocap_hrnet-w32_4xb12-140e_coco-512x512.py')
SHAPE = (128, 160)  # (H, W): small, and not square


class TinyHead(nn.Module):
    """What the tool reads from a LOGOCAPHead (its public attributes): K,
    C, the local KEM offsets (K, S, S, 2), a, the CMP and the adaptation."""

    def __init__(self, K=3, C=2, S=5, a=7, channels=(8, 6, 4)):
        super().__init__()
        self.num_keypoints = K
        self.embedding_channels = C
        self.register_buffer('kem_offsets', torch.zeros(K, S, S, 2))
        self.global_kem_size = a
        self.adaptation_impl = 'fft'
        self.cmp = ConvMessagePassing(K * C, K, channels)


def cmp_by_hand(N, K, C, S, channels, mixtures=20):
    """The CMP's multiply-adds in eval mode, by MMEngine's conventions:
    convs count weights x output cells (no bias), an inference BatchNorm 2
    per value (1 without affine), Attentive Norm its affine-free BN, the
    1x1 attention conv on the (C2, 1, 1) statistics and two (1, m) x (m, C2)
    mixture products; ReLU and the element-wise statistics count 0."""
    c1, c2, c3 = channels
    cells = S * S
    conv = (c1 * K * C * 9 + c2 * c1 * 9 + c3 * c2 * 9 + K * c3) * cells
    batch_norms = 2 * c1 * cells + 2 * c3 * cells
    attentive_norm = c2 * cells + mixtures * c2 + 2 * mixtures * c2
    return N * (conv + batch_norms + attentive_norm)


@pytest.fixture(scope='module')
def cpu_model():
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    return analysis.build_model(analysis.load_config(CPU_CFG), None, 'cpu')


@pytest.mark.parametrize('num', [1, 4])
def test_cmp_count_equals_the_hand_computation(num):
    head = TinyHead()
    geo = flops.geometry(head)
    assert geo == flops.Geometry(3, 2, 5, 7)
    assert flops.cmp_flops(head.cmp, num, geo) == cmp_by_hand(
        num, 3, 2, 5, (8, 6, 4))
    assert flops.refinement_flops(head, num).local_kams == cmp_by_hand(
        num, 3, 2, 5, (8, 6, 4))
    assert head.cmp.training  # counted in eval mode, mode restored


def test_cmp_of_the_cpu_config_equals_the_hand_computation(cpu_model):
    head = cpu_model.head
    K, C, S, a = flops.geometry(head)
    assert (K, C, S, a) == (17, 32, 11, 49)  # the config's widths
    assert flops.refinement_flops(head, 2).local_kams == cmp_by_hand(
        2, 17, 32, 11, (128, 64, 64))


class _Call(nn.Module):
    """A function as a module, so that MMEngine's analyzer traces it."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _analyzed(fn, *inputs) -> int:
    return int(flops._analyzer(_Call(fn), inputs).total())


def test_adaptation_count_is_the_analyzers_count_of_the_conv():
    geo = flops.Geometry(num_keypoints=3, embedding_channels=2, local_size=5,
                         global_size=9)
    N, K, S, a = 4, 3, 5, 9
    counted = _analyzed(
        lambda g, k: contextual_adaptation(g, k, impl='conv'),
        torch.rand(N, K, a, a), torch.rand(N, K, S, S))
    assert counted == flops.adaptation_flops(N, geo) == N * K * S**2 * a**2


def test_sampling_counts_are_the_analyzers_bilinear_counts():
    N, K, C, S, a, stride = 3, 4, 5, 7, 9, 4
    geo = flops.Geometry(K, C, S, a)
    poses = torch.rand(1, N, K, S, S, 2) * 60
    local = _analyzed(lambda e, p: sample_local_kems(e, p, stride),
                      torch.rand(1, C, 16, 16), poses)
    assert local == flops.local_kem_flops(N, geo) == 4 * N * K * C * S * S
    centres = torch.rand(1, N, K, 2) * 60
    windows = _analyzed(lambda h, c: sample_global_kems(h, c, a, stride),
                        torch.rand(1, K, 16, 16), centres)
    assert windows == flops.global_kem_flops(N, geo) == 4 * N * K * a * a


def test_refinement_is_linear_in_the_proposals(cpu_model):
    one = flops.refinement_flops(cpu_model.head, 1)
    assert min(one.local_kems, one.local_kams, one.global_kams,
               one.decode) > 0
    for num in (2, 7, 30):
        many = flops.refinement_flops(cpu_model.head, num)
        for stage in ('local_kems', 'local_kams', 'global_kams', 'decode',
                      'total'):
            assert getattr(many, stage) == num * getattr(one, stage), stage
    with pytest.raises(ValueError, match='>= 1'):
        flops.refinement_flops(cpu_model.head, 0)


def _get_flops_count(cfg_path, shape) -> int:
    """What MMPose's tools/analysis_tools/get_flops.py counts: init_model,
    ``forward`` replaced by ``_forward``, ``get_model_complexity_info`` on
    (3, H, W)."""
    from mmengine.analysis import get_model_complexity_info
    from mmpose.apis import init_model
    model = init_model(cfg_path, checkpoint=None, device='cpu')
    model.forward = model._forward  # as get_flops does
    result = get_model_complexity_info(model, (3, *shape), show_table=False,
                                       show_arch=False)
    return int(result['flops'])


def test_total_exceeds_get_flops_by_exactly_the_refinement(cpu_model):
    report = flops.count_flops(cpu_model, SHAPE, [1, 30])
    dense = _get_flops_count(CPU_CFG, SHAPE)
    assert sum(report.dense.values()) == dense
    # a real split by module (nothing left over outside the three parts)
    assert min(report.dense.values()) > 0
    for refinement in report.refinement:
        assert report.total(refinement) - dense == refinement.total > 0
    flipped = flops.count_flops(cpu_model, SHAPE, [30], flip_test=True)
    assert flipped.total(flipped.refinement[0]) == \
        2 * dense + report.refinement[1].total


def test_documented_get_flops_invocation_prints_the_dense_count(cpu_model):
    """``mim run mmpose get_flops CFG --input-shape H W`` (the invocation
    the module docstring gives) prints the dense count of this tool."""
    from mmengine.analysis.print_helper import _format_size
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.exists(mim):
        pytest.skip(f'{mim} (openmim) not installed')
    proc = subprocess.run(
        [mim, 'run', 'mmpose', 'get_flops', CPU_CFG, '--input-shape',
         *map(str, SHAPE)], cwd=REPO, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    printed = re.search(r'^Flops: (\S+)$', proc.stdout, re.M).group(1)
    dense = sum(flops.dense_flops(cpu_model, SHAPE).values())
    assert printed == _format_size(dense)
    # the docstring's invocation gives the paper config its own input size
    assert ('get_flops \\\n        configs/logocap/coco/logocap_hrnet-w32_'
            '4xb12-140e_coco-512x512.py \\\n        --input-shape 512 512'
            ) in flops.__doc__
    assert tuple(analysis.load_config(W32_CFG).codec.input_size) == (512, 512)


def test_table_rows_add_up():
    refinement = [flops.Refinement(n, 1e6 * n, 5e8 * n, 2e7 * n, 1e6 * n)
                  for n in (1, 30)]
    report = flops.FlopsReport((256, 256), dict(backbone=2e9, neck=1e7,
                                                head=3e8), 1, refinement)
    rows = {r['stage']: r for r in flops.report_rows(report)}
    assert rows['backbone']['n1'] == rows['backbone']['n30'] == 2.0
    assert rows['refinement']['n30'] == pytest.approx(30 * 0.522)
    assert rows['total']['n1'] == pytest.approx(2.31 + 0.522)
    table = flops.report_table(report).splitlines()
    assert table[0] == '| stage | 1 proposal | 30 proposals |'
    assert table[-1] == '| total | 2.832 | 17.970 |'
    report.passes = 2  # flip test: the dense rows twice
    rows = {r['stage']: r for r in flops.report_rows(report)}
    assert rows['backbone (image and flip)']['n1'] == 4.0
    assert rows['total']['n1'] == pytest.approx(4.62 + 0.522)


def test_command_line_prints_the_table(capsys):
    text = flops_tool.main([CPU_CFG, '--input-shape', '128', '--proposals', '1',
                       '30'])
    assert text in capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith('# FLOPs of logocap_effnetlite0_1xb8-40e_'
                               'coco-256x256 (input 1x3x128x128, one pass')
    assert '| stage | 1 proposal | 30 proposals |' in lines
    for stage in ('backbone', 'neck', 'heads (heatmap, offset, embedding '
                  'branches)', 'local KEMs (sampling)',
                  'local KAMs (message passing)',
                  'global KAMs (global KEMs + adaptation)', 'decode (top-2)',
                  'refinement', 'total'):
        assert any(line.startswith(f'| {stage} |') for line in lines), stage
    assert f'get_flops {CPU_CFG} --input-shape 128 128' in text
    assert "this config runs 'fft'" in text
