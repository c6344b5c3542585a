"""FLOPs of a LOGO-CAP model with the refinement, as rows of the paper's
Table 4 (backbone, heads, local KEMs, local KAMs, global KAMs, decoding) at
1 and 30 proposals.

MMPose's own counter counts only the dense network: backbone, neck and
``head.forward`` (the heatmap, offset and embedding branches), one pass, no
flip. Its default input is the top-down shape (1, 3, 256, 192); a bottom-up
config needs its own input size, e.g. for the paper's HRNet-W32 config::

    mim run mmpose get_flops \\
        configs/logocap/coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py \\
        --input-shape 512 512

(``--input-shape H W``; ``--device cpu`` is its default). It warns that
``head.cmp`` was never called: the per-proposal refinement is not in its
count. This tool prints both: the dense part is counted exactly as
``get_flops`` counts it (MMEngine's ``FlopAnalyzer`` on the estimator's
``_forward`` at (1, 3, H, W)), split by module, and the refinement of N
proposals is added:

- **local KEMs**: bilinear sampling of the C embedding channels at the
  N*K*S*S cells, 4 FLOPs per sampled value (MMEngine's ``grid_sampler``
  count): ``4 N K C S^2``;
- **local KAMs (CMP)**: ``FlopAnalyzer`` on ``head.cmp`` run on an
  (N, K*C, S, S) tensor in eval mode, so the three 3x3 convs, the final 1x1
  conv, the BatchNorms and Attentive Norm (its affine-free BatchNorm, the
  1x1 attention conv and the two mixture products) are all counted;
- **global KAMs**: the global KEMs, bilinear samples of the K heatmaps at
  N*K*a*a positions (``4 N K a^2``), and the contextual adaptation. Counted
  for ``adaptation_impl='conv'`` (the authors'): a grouped conv2d with one
  group per (proposal, keypoint), each an S x S kernel (the KAM) slid over
  the a x a window with padding S // 2, so every one of the a^2 outputs
  takes S^2 multiply-adds: ``N K S^2 a^2``. The default 'fft' computes the
  same convolution through FFTs, with another (smaller) operation count;
- **decoding**: top-2 of each a x a refined map: a^2 comparisons, then the
  convex average of the two cells' x, y and score, 6 multiply-adds:
  ``N K (a^2 + 6)``.

Conventions (MMEngine's): one multiply-add is one FLOP; element-wise
operations (ReLU, the KAM clamp, the Gaussian reweighing, the 1/S^2 kernel
scale, the flip average) count 0. Not counted at all: the initial-pose
decoding (centre max-pool NMS and offset gathering, per image), pose NMS
and the mapping back to the image. ``--flip-test`` doubles the dense rows,
as a flip test runs the network on the image and on its flip; the
refinement runs once on the averaged maps.

The default input is the config's codec ``input_size``; a test image is
resized with ``BottomupResize`` (long side expanded to a multiple of 64),
so pass ``--input-shape`` for the canvas of a given image.

``tools/count_flops.py`` is the command line over this module::

    python tools/count_flops.py \\
        configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \\
        --proposals 1 30
"""
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
import torch.nn as nn

from . import (Column, is_logocap, markdown_table, proposals_word, short_name)

#: samples that one bilinear interpolation costs (MMEngine's grid_sampler)
BILINEAR_FLOPS = 4
#: multiply-adds of the top-2 convex average per map (x, y, score)
TOP2_AVERAGE_FLOPS = 6


class Geometry(NamedTuple):
    """The sizes the refinement cost depends on."""
    num_keypoints: int  # K
    embedding_channels: int  # C
    local_size: int  # S, local KEM / KAM side
    global_size: int  # a, global KEM side


@dataclass
class Refinement:
    """Refinement FLOPs of N proposals, by stage (Table 4 columns)."""
    num_proposals: int
    local_kems: int
    local_kams: int
    global_kams: int
    decode: int

    @property
    def total(self) -> int:
        return self.local_kems + self.local_kams + self.global_kams + \
            self.decode


@dataclass
class FlopsReport:
    """Dense FLOPs by module (one pass, or both flip passes) and the
    refinement at each proposal count."""
    input_shape: Tuple[int, int]  # (H, W)
    dense: Dict[str, int]  # 'backbone', 'neck', 'head'
    passes: int  # 1, or 2 with a flip test
    refinement: List[Refinement]

    @property
    def dense_total(self) -> int:
        return self.passes * sum(self.dense.values())

    def total(self, refinement: Refinement) -> int:
        return self.dense_total + refinement.total


# --------------------------------------------------------------------------
# dense network (what get_flops counts)
# --------------------------------------------------------------------------
class EstimatorForward(nn.Module):
    """An estimator's ``_forward`` (backbone, neck, ``head.forward``) as a
    module's ``forward``: what MMPose's ``get_flops`` traces."""

    def __init__(self, estimator: nn.Module):
        super().__init__()
        self.estimator = estimator

    def forward(self, inputs: torch.Tensor):
        return self.estimator._forward(inputs)


def _analyzer(module: nn.Module, inputs: tuple):
    """MMEngine's ``FlopAnalyzer`` without its per-op warnings (the ops it
    skips are the element-wise ones, 0 by convention)."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


def dense_flops(model: nn.Module, input_shape: Tuple[int, int]
                ) -> Dict[str, int]:
    """FLOPs of one dense pass at (1, 3, H, W), by estimator part.

    Args:
        model (nn.Module): a bottom-up pose estimator (eval mode).
        input_shape (tuple): (H, W).

    Returns:
        dict: 'backbone', 'neck' (0 without one) and 'head' (the dense
        branches of ``head.forward``); their sum is ``get_flops``' count.
    """
    device = next(model.parameters()).device
    inputs = (torch.zeros(1, 3, *input_shape, device=device), )
    with torch.no_grad():
        by_module = _analyzer(EstimatorForward(model), inputs).by_module()
    parts = {part: by_module.get(f'estimator.{part}', 0)
             for part in ('backbone', 'neck', 'head')}
    # anything traced outside the three parts (nothing for MMPose's
    # estimators) is kept with the head, so that the parts sum to the total
    parts['head'] += by_module[''] - sum(parts.values())
    return parts


# --------------------------------------------------------------------------
# refinement (per proposal)
# --------------------------------------------------------------------------
def geometry(head: nn.Module) -> Geometry:
    """K, C, S and a of a ``LOGOCAPHead``, from its public attributes:
    ``num_keypoints``, ``embedding_channels``, the local KEM offsets
    (K, S, S, 2) and ``global_kem_size``."""
    return Geometry(int(head.num_keypoints), int(head.embedding_channels),
                    int(head.kem_offsets.shape[1]),
                    int(head.global_kem_size))


def local_kem_flops(num: int, geo: Geometry) -> int:
    """Bilinear samples of the embedding on N*K local KEMs: 4 N K C S^2."""
    K, C, S, _ = geo
    return BILINEAR_FLOPS * num * K * C * S * S


def cmp_flops(cmp: nn.Module, num: int, geo: Geometry) -> int:
    """MMEngine's count of the message passing on (N, K*C, S, S) inputs,
    in eval mode (inference BatchNorm)."""
    K, C, S, _ = geo
    param = next(cmp.parameters())
    inputs = torch.zeros(num, K * C, S, S, dtype=param.dtype,
                         device=param.device)
    was_training = cmp.training
    cmp.eval()
    try:
        with torch.no_grad():
            return int(_analyzer(cmp, (inputs, )).total())
    finally:
        cmp.train(was_training)


def global_kem_flops(num: int, geo: Geometry) -> int:
    """Bilinear samples of the heatmaps on N*K global KEMs: 4 N K a^2."""
    K, _, _, a = geo
    return BILINEAR_FLOPS * num * K * a * a


def adaptation_flops(num: int, geo: Geometry) -> int:
    """Contextual adaptation as a grouped conv: N K S^2 a^2 multiply-adds.

    N*K groups of one channel, each an S x S kernel over an a x a window
    with padding S // 2 (an a x a output): S^2 multiply-adds per output.
    """
    K, _, S, a = geo
    return num * K * S * S * a * a


def decode_flops(num: int, geo: Geometry) -> int:
    """Top-2 decoding of N*K a x a maps: N K (a^2 + 6)."""
    K, _, _, a = geo
    return num * K * (a * a + TOP2_AVERAGE_FLOPS)


def refinement_flops(head: nn.Module, num: int) -> Refinement:
    """Refinement FLOPs of ``num`` proposals (>= 1) of a ``LOGOCAPHead``."""
    if num < 1:
        raise ValueError(f'proposals must be >= 1, got {num}')
    geo = geometry(head)
    return Refinement(
        num_proposals=num,
        local_kems=local_kem_flops(num, geo),
        local_kams=cmp_flops(head.cmp, num, geo),
        global_kams=global_kem_flops(num, geo) + adaptation_flops(num, geo),
        decode=decode_flops(num, geo))


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def count_flops(model: nn.Module,
                input_shape: Tuple[int, int],
                proposals: Sequence[int] = (1, 30),
                flip_test: bool = False) -> FlopsReport:
    """Dense and refinement FLOPs of a LOGO-CAP estimator."""
    if not is_logocap(model):
        raise ValueError(f'{type(model.head).__name__} is not a LOGOCAPHead:'
                         ' it has no refinement to count (use get_flops)')
    return FlopsReport(
        input_shape=tuple(input_shape),
        dense=dense_flops(model, input_shape),
        passes=2 if flip_test else 1,
        refinement=[refinement_flops(model.head, n) for n in proposals])


def report_rows(report: FlopsReport) -> List[dict]:
    """GFLOPs by stage: one row per stage, keyed ``stage`` and
    ``'n<N>'`` for each proposal count N."""

    def row(stage: str, flops_of) -> dict:
        return dict(stage=stage, **{
            f'n{r.num_proposals}': flops_of(r) / 1e9
            for r in report.refinement
        })

    flip = ' (image and flip)' if report.passes == 2 else ''
    rows = [
        row(label + flip, lambda r, part=part: report.passes *
            report.dense[part])
        for part, label in (('backbone', 'backbone'), ('neck', 'neck'),
                            ('head', 'heads (heatmap, offset, embedding '
                             'branches)'))
    ]
    for attr, label in (('local_kems', 'local KEMs (sampling)'),
                        ('local_kams', 'local KAMs (message passing)'),
                        ('global_kams', 'global KAMs (global KEMs + '
                         'adaptation)'),
                        ('decode', 'decode (top-2)')):
        rows.append(row(label, lambda r, attr=attr: getattr(r, attr)))
    rows.append(row('refinement', lambda r: r.total))
    rows.append(row('total', report.total))
    return rows


def report_table(report: FlopsReport) -> str:
    """The rows of :func:`report_rows` as a markdown table."""
    columns = [Column('stage', 'stage')] + [
        Column(f'n{r.num_proposals}', f'{r.num_proposals} {proposals_word(r.num_proposals)}', '{:.3f}')
        for r in report.refinement
    ]
    return markdown_table(columns, report_rows(report))


def render(report: FlopsReport, cfg_path: str, adaptation_impl: str) -> str:
    """The table with its title and the notes under it."""
    H, W = report.input_shape
    flip = 'flip test on' if report.passes == 2 else 'one pass, no flip'
    first = report.refinement[0]
    per_proposal = first.total / first.num_proposals / 1e9
    impl = ("adaptation counted as adaptation_impl='conv'" +
            (f" (this config runs '{adaptation_impl}', the same convolution "
             'through FFTs)' if adaptation_impl != 'conv' else ''))
    lines = [
        f'# FLOPs of {short_name(cfg_path)} (input 1x3x{H}x{W}, {flip}; '
        'GFLOPs, one multiply-add = one FLOP)', '',
        report_table(report), '',
        'Dense network (backbone + neck + heads, one pass): '
        f'{sum(report.dense.values()) / 1e9:.3f} GFLOPs, what '
        f'`mim run mmpose get_flops {cfg_path} --input-shape {H} {W}` '
        'counts.',
        f'Refinement: {per_proposal:.3f} GFLOPs per proposal (linear in the '
        f'proposals); {impl}.',
    ]
    return '\n'.join(lines)


def default_input_shape(model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the head codec's ``input_size`` (given as (w, h))."""
    w, h = model.head.decoder.input_size
    return int(h), int(w)
