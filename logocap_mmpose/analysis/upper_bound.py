"""The empirical upper bound of a local-window search (paper, Fig. 2).

The paper motivates LOGO-CAP with an oracle: start from the centre-offset
(initial) poses, look at an s x s window of candidate positions around each
keypoint, and move the keypoint to the candidate closest to the ground truth.
The COCO AP of these oracle poses, against the AP of the initial poses, shows
how much a local refinement could gain at most (60.1 -> 88.9 AP with 11 x 11
windows for HRNet-W32 on COCO val in the paper).

Here the candidates are the cells of the head's own local KEM grid
(``LOGOCAPHead.kem_offsets``, see ``models/kem.py``): the s x s window is the
central s x s block of that S x S grid, so its step is the KEM step of each
keypoint (``sigma_k / min(sigma)`` times ``2 * local_kem_extent / (S - 1)``
input pixels) and s = 1 is the initial keypoint itself. The ground-truth
person of a proposal is chosen as the training targets choose it
(:func:`~logocap_mmpose.models.losses.oks_kernel_targets`): the person with
the largest mean, over its labelled keypoints, of the best OKS within the
window. Each keypoint then takes the window cell closest to that person's
keypoint; a keypoint the person does not label stays where it was. Scores,
the set of poses (after the pose NMS of the baseline) and their order stay
those of the initial poses, so only the keypoint positions change.

The complementary oracle keeps the keypoints and changes the scores: each
initial pose is scored by its true OKS with the best-matching person
(:func:`true_pose_oks`), the ranking a perfect pose-quality estimate would
give. It bounds what a learned pose score (e.g. ``test_cfg.kam_score``) can
gain on the same poses.

Shapes: B images, N poses per image, G ground-truth persons, K keypoints,
s x s window.
"""
import copy
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar
from torch import Tensor

from ..models.losses import oks_kernel_targets, pose_oks
from . import Column, markdown_table, test_options

DEFAULT_WINDOWS = (1, 3, 5, 7, 9, 11)
METRICS = (('AP', 'coco/AP'), ('AP50', 'coco/AP .5'),
           ('AP75', 'coco/AP .75'), ('AR', 'coco/AR'))


def window_offsets(kem_offsets: Tensor, size: int) -> Tensor:
    """The central ``size`` x ``size`` cells of a local KEM grid.

    Args:
        kem_offsets (Tensor): (K, S, S, 2) offsets of the grid cells from the
            initial keypoint (``LOGOCAPHead.kem_offsets``).
        size (int): s, odd, 1 <= s <= S.

    Returns:
        Tensor: (K, s, s, 2), relative to the centre cell (so the centre of
        the window is exactly 0).
    """
    S = kem_offsets.shape[1]
    if size < 1 or size % 2 != 1 or size > S:
        raise ValueError(f'window size must be odd and between 1 and the '
                         f'local KEM size {S}, got {size}')
    c, r = S // 2, size // 2
    window = kem_offsets[:, c - r:c + r + 1, c - r:c + r + 1]
    return window - kem_offsets[:, c:c + 1, c:c + 1]


@torch.no_grad()
def oracle_keypoints(keypoints: Tensor, offsets: Tensor,
                     gt_keypoints: Tensor, gt_visible: Tensor,
                     gt_areas: Tensor, sigmas: Tensor) -> Tensor:
    """Move every keypoint to the window cell closest to its ground truth.

    Args:
        keypoints (Tensor): (B, N, K, 2) initial poses.
        offsets (Tensor): (K, s, s, 2) or (B, K, s, s, 2) window cells
            relative to each keypoint (:func:`window_offsets`), in the frame
            of ``keypoints``.
        gt_keypoints (Tensor): (B, G, K, 2) ground truth, same frame.
        gt_visible (Tensor): (B, G, K), > 0 for labelled keypoints (0 for
            padding persons).
        gt_areas (Tensor): (B, G) person areas in that frame.
        sigmas (Tensor): (K,) OKS sigmas.

    Returns:
        Tensor: (B, N, K, 2). A pose matched to a person takes, per labelled
        keypoint, the cell nearest to that person's keypoint (the first one
        of equal distance); keypoints the person does not label, and every
        keypoint of an image without ground truth, keep their position.
        With s = 1 the result equals ``keypoints``.
    """
    if offsets.dim() == 4:
        offsets = offsets[None]
    B, N, K, _ = keypoints.shape
    s = offsets.shape[2]
    if N == 0 or gt_keypoints.shape[1] == 0:
        return keypoints.clone()
    cells = keypoints[..., None, None, :] + offsets[:, None]  # B,N,K,s,s,2
    targets = oks_kernel_targets(cells, gt_keypoints, gt_visible, gt_areas,
                                 sigmas)
    goal = targets['matched_keypoints']  # (B, N, K, 2)
    labelled = gt_visible.gather(
        1, targets['matched'][..., None].expand(B, N, K)) > 0
    dist = (cells - goal[..., None, None, :]).pow(2).sum(-1).flatten(-2)
    best = dist.argmin(-1)  # (B, N, K)
    best = torch.where(labelled, best, torch.full_like(best, s * s // 2))
    chosen = cells.flatten(3, 4).gather(
        3, best[..., None, None].expand(B, N, K, 1, 2)).squeeze(3)
    # the centre cell is the keypoint itself: keep it bit for bit
    return torch.where((best == s * s // 2)[..., None], keypoints, chosen)


def annotation_arrays(annotations: Sequence[dict], num_keypoints: int
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground truth of one image from its COCO annotations.

    Crowd annotations and persons without a labelled keypoint are left out
    (COCO's OKS ignores them as matches too).

    Args:
        annotations (Sequence[dict]): COCO annotation dicts (``keypoints``
            as K x (x, y, v), ``area``, ``iscrowd``; ``bbox`` is the area
            when ``area`` is missing).
        num_keypoints (int): K.

    Returns:
        tuple: ``keypoints`` (G, K, 2), ``visible`` (G, K) (1 where v > 0)
        and ``areas`` (G,), float32 numpy arrays in image pixels.
    """
    K = num_keypoints
    anns = [a for a in annotations if 'keypoints' in a]
    if not anns:
        return (np.zeros((0, K, 2), np.float32), np.zeros((0, K), np.float32),
                np.zeros((0, ), np.float32))
    kpts = np.asarray([a['keypoints'] for a in anns], np.float32)
    if kpts.shape[1] != 3 * K:
        raise ValueError(f'the annotations hold {kpts.shape[1] // 3} '
                         f'keypoints per person, the model {K}')
    kpts = kpts.reshape(-1, K, 3)
    crowd = np.asarray([bool(a.get('iscrowd', 0)) for a in anns])
    areas = np.asarray([
        a['area'] if 'area' in a else a['bbox'][2] * a['bbox'][3]
        for a in anns
    ], np.float32)
    visible = (kpts[..., 2] > 0).astype(np.float32)
    keep = ~crowd & (visible.sum(1) > 0)
    return kpts[keep, :, :2], visible[keep], areas[keep]


def _image_frame(offsets: Tensor, metainfo: dict) -> Tensor:
    """Input-pixel offsets (K, s, s, 2) -> image pixels, as
    ``BottomupPoseEstimator.add_pred_to_datasample`` maps the poses."""
    factor = np.asarray(metainfo['input_scale'], np.float32) / np.asarray(
        metainfo['input_size'], np.float32)
    return offsets * offsets.new_tensor(factor)


def oracle_samples(samples: Sequence, kem_offsets: Tensor,
                   windows: Iterable[int], sigmas: Sequence[float]
                   ) -> Dict[int, list]:
    """Oracle versions of predicted data samples, one list per window size.

    Args:
        samples (Sequence[PoseDataSample]): outputs of ``model.test_step``
            (``pred_instances.keypoints`` (N, K, 2) in image pixels), with
            ``raw_ann_info`` (the COCO annotations of the image),
            ``input_size`` and ``input_scale`` in their meta.
        kem_offsets (Tensor): (K, S, S, 2) local KEM grid, input pixels.
        windows (Iterable[int]): window sizes s.
        sigmas (Sequence[float]): (K,) OKS sigmas.

    Returns:
        dict: ``{s: [PoseDataSample]}``, copies of ``samples`` whose
        ``pred_instances`` hold the oracle keypoints (and the boxes around
        them); scores and everything else are unchanged.
    """
    windows = list(windows)
    K = kem_offsets.shape[0]
    kem_offsets = kem_offsets.detach().float().cpu()
    sigmas = torch.as_tensor(np.asarray(sigmas, np.float32))
    out = {s: [] for s in windows}
    for sample in samples:  # one image at a time, its poses at once
        if 'raw_ann_info' not in sample.metainfo:
            raise KeyError('the data samples carry no raw_ann_info: keep it '
                           "in the test pipeline's PackPoseInputs meta_keys")
        anns = sample.metainfo['raw_ann_info']
        anns = anns if isinstance(anns, list) else [anns]
        # in the predictions' own precision (MMPose leaves them float64), so
        # that a keypoint that stays is the very same number
        kpts = torch.from_numpy(np.array(sample.pred_instances.keypoints))
        kpts = kpts[None] if kpts.is_floating_point() else kpts[None].float()
        gt, vis, areas = (torch.from_numpy(a)[None].to(kpts.dtype)
                          for a in annotation_arrays(anns, K))
        for s in windows:
            offsets = _image_frame(window_offsets(kem_offsets, s),
                                   sample.metainfo).to(kpts.dtype)
            moved = oracle_keypoints(kpts, offsets, gt, vis, areas,
                                     sigmas.to(kpts.dtype))[0].numpy()
            out[s].append(_with_keypoints(sample, moved))
    return out


def true_pose_oks(keypoints: Tensor, gt_keypoints: Tensor, gt_visible: Tensor,
                  gt_areas: Tensor, sigmas: Tensor) -> Tensor:
    """COCO OKS of each pose with its best-matching ground-truth person.

    :func:`~logocap_mmpose.models.losses.pose_oks` of one image: the
    training targets' OKS of the pose itself, the same definition and
    matching as the oracle rows and the quality head's target.

    Args:
        keypoints (Tensor): (N, K, 2) poses.
        gt_keypoints (Tensor): (G, K, 2) ground truth, same frame.
        gt_visible (Tensor): (G, K), > 0 for labelled keypoints.
        gt_areas (Tensor): (G,) person areas.
        sigmas (Tensor): (K,) OKS sigmas.

    Returns:
        Tensor: (N,) the largest OKS over the persons (0 without any), where
        OKS = mean over the person's labelled keypoints of
        ``exp(-d^2 / (2 * area * (2 * sigma)^2))``, as COCO defines it.
    """
    return pose_oks(keypoints[None], gt_keypoints[None], gt_visible[None],
                    gt_areas[None], sigmas)[0]


def oks_scored_samples(samples: Sequence, sigmas: Sequence[float]) -> list:
    """Copies of predicted data samples whose poses are scored by their true
    OKS (every keypoint score set to it; keypoints unchanged).

    Args:
        samples (Sequence[PoseDataSample]): as for :func:`oracle_samples`.
        sigmas (Sequence[float]): (K,) OKS sigmas.

    Returns:
        list[PoseDataSample]: a ``CocoMetric`` with ``score_mode='keypoint'``
        (or ``'bbox'``: the box scores are set too) ranks them by true OKS.
    """
    sigmas = torch.as_tensor(np.asarray(sigmas, np.float64))
    out = []
    for sample in samples:
        kpts = torch.as_tensor(np.asarray(sample.pred_instances.keypoints,
                                          np.float64))
        anns = sample.metainfo['raw_ann_info']
        anns = anns if isinstance(anns, list) else [anns]
        gt, vis, areas = (torch.from_numpy(a).double()
                          for a in annotation_arrays(anns, kpts.shape[1]))
        oks = true_pose_oks(kpts, gt, vis, areas, sigmas).float().numpy()
        new = _with_keypoints(sample, sample.pred_instances.keypoints)
        new.pred_instances.keypoint_scores = np.repeat(
            oks[:, None], kpts.shape[1], axis=1)
        if 'bbox_scores' in new.pred_instances:
            new.pred_instances.bbox_scores = oks.copy()
        out.append(new)
    return out


def score_oks_correlation(samples: Sequence, rescored: Sequence) -> float:
    """Spearman rank correlation between the poses' scores and their true
    OKS, over all poses of ``samples``.

    Args:
        samples (Sequence[PoseDataSample]): predictions; a pose's score is
            the mean of its keypoint scores (``CocoMetric``'s
            ``score_mode='keypoint'``).
        rescored (Sequence[PoseDataSample]): the same poses from
            :func:`oks_scored_samples` (their keypoint scores are the true
            OKS).

    Returns:
        float: rho in [-1, 1]; NaN with fewer than two poses or constant
        scores.
    """
    from scipy.stats import spearmanr
    scores = [np.asarray(s.pred_instances.keypoint_scores).mean(-1)
              for s in samples]
    oks = [np.asarray(s.pred_instances.keypoint_scores)[:, 0]
           for s in rescored]
    scores, oks = np.concatenate(scores), np.concatenate(oks)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(oks) == 0:
        return float('nan')
    return float(spearmanr(scores, oks)[0])


def _with_keypoints(sample, keypoints: np.ndarray):
    """A copy of ``sample`` whose predicted keypoints are ``keypoints``."""
    new = sample.clone()  # shallow: the fields are shared with ``sample``
    pred = InstanceData()
    for key, value in sample.pred_instances.items():
        pred.set_field(copy.deepcopy(value), key)
    pred.keypoints = keypoints
    if 'bboxes' in pred and len(keypoints):
        pred.bboxes = np.concatenate((keypoints.min(1), keypoints.max(1)),
                                     axis=1)
    new.pred_instances = pred
    return new


def score_settings(modes: Sequence[str],
                   kam_scores: Sequence[Optional[str]] = (),
                   pose_scores: Sequence[str] = ()) -> Dict[str, dict]:
    """The test settings of :func:`evaluate_upper_bound`'s model rows:
    each mode under each ``kam_score`` and each ``pose_score`` given (the
    model's own setting of a key when none are), keyed
    ``'<mode>[, kam_score=<v>][, pose_score=<v>]'``."""
    settings = {}
    for mode in modes:
        for kam in (kam_scores or [...]):
            for pose in (pose_scores or [...]):
                name, cfg = mode, dict(mode=mode)
                if kam is not ...:
                    name, cfg['kam_score'] = f'{name}, kam_score={kam}', kam
                if pose is not ...:
                    name += f', pose_score={pose}'
                    cfg['pose_score'] = pose
                settings[name] = cfg
    return settings


def evaluate_upper_bound(model,
                         dataloader,
                         evaluator_cfg,
                         windows: Sequence[int] = DEFAULT_WINDOWS,
                         modes: Sequence[str] = (),
                         dataset_meta: Optional[dict] = None,
                         progress: bool = False,
                         kam_scores: Sequence[Optional[str]] = (),
                         pose_scores: Sequence[str] = ()) -> dict:
    """COCO metrics of the initial poses, of their window oracles and of the
    model's own test modes on a dataset.

    The initial poses are the model's ``test_cfg.mode='baseline'`` output
    (centre-offset poses, their heatmap scores, pose NMS), so the first row
    is the AP that ``tools/test.py`` gives in that mode.

    Args:
        model (LOGOCAPPoseEstimator): model in eval mode, with a
            ``LOGOCAPHead`` (its ``kem_offsets`` give the windows).
        dataloader: test dataloader (batches as ``model.test_step`` takes
            them; the pipeline must keep ``raw_ann_info``).
        evaluator_cfg (dict | list): the evaluator config (e.g. the config's
            ``test_evaluator``, a ``CocoMetric``); one evaluator is built
            per row.
        windows (Sequence[int]): window sizes s.
        modes (Sequence[str]): ``test_cfg.mode`` values to score as well
            (e.g. ``('full',)``), for comparison.
        dataset_meta (dict, optional): dataset meta (``sigmas``,
            ``num_keypoints``); ``dataloader.dataset.metainfo`` when None.
        progress (bool): show a progress bar over the batches.
        kam_scores (Sequence[str | None]): ``test_cfg.kam_score`` values
            (None, ``'product'``, ``'replace'``) to score each of ``modes``
            with; empty: the model's own setting only.
        pose_scores (Sequence[str]): ``test_cfg.pose_score`` values
            (``'heatmap'``, ``'quality'``, ``'product'``: the learned
            pose-quality score) likewise, crossed with ``kam_scores``.

    Returns:
        dict: ``initial`` (metrics dict), ``oracle`` (``{s: metrics}``),
        ``oks_scored`` (the initial poses scored by their true OKS, see
        :func:`oks_scored_samples`), ``modes`` (``{mode: metrics}``, keys
        of :func:`score_settings`) and
        ``modes_oks_scored`` (``{mode: metrics}``, each mode's poses scored
        by their true OKS, the poses of its first setting), each metrics
        dict as the evaluator returns it
        (e.g. ``coco/AP``), and ``score_oks_spearman`` (``{'initial' or a
        key of modes: rho}``, :func:`score_oks_correlation` over all poses:
        how well each score ranks poses by quality).
    """
    windows = [int(s) for s in windows]
    meta = dataset_meta if dataset_meta is not None else \
        dataloader.dataset.metainfo
    sigmas = meta['sigmas']
    kem_offsets = model.head.kem_offsets
    for s in windows:  # refuse a bad window before running the model
        window_offsets(kem_offsets, s)

    def build() -> Evaluator:
        evaluator = Evaluator(copy.deepcopy(evaluator_cfg))
        evaluator.dataset_meta = meta
        return evaluator

    initial, oks_scored = build(), build()
    oracles = {s: build() for s in windows}
    settings = score_settings(modes, kam_scores, pose_scores)
    others = {name: build() for name in settings}
    others_oks = {mode: build() for mode in modes}
    # every pose's (score, true OKS) sample lists, for the rank correlation
    pairs = {name: ([], []) for name in ['initial', *settings]}
    count = 0
    model.eval()
    bar = ProgressBar(len(dataloader)) if progress else None
    with torch.no_grad():
        for data in dataloader:
            with test_options(model, mode='baseline'):
                outputs = model.test_step(data)
            count += len(outputs)
            for s, moved in oracle_samples(outputs, kem_offsets, windows,
                                           sigmas).items():
                oracles[s].process(data_samples=moved, data_batch=data)
            rescored = oks_scored_samples(outputs, sigmas)
            oks_scored.process(data_samples=rescored, data_batch=data)
            pairs['initial'][0].extend(outputs)
            pairs['initial'][1].extend(rescored)
            initial.process(data_samples=outputs, data_batch=data)
            scored = set()
            for name, evaluator in others.items():
                with test_options(model, **settings[name]):
                    predicted = model.test_step(data)
                evaluator.process(data_samples=predicted, data_batch=data)
                # per row: a kam_score reorders the poses (and the pose NMS
                # may keep others), so the OKS list follows each row's poses
                rescored = oks_scored_samples(predicted, sigmas)
                pairs[name][0].extend(predicted)
                pairs[name][1].extend(rescored)
                mode = settings[name]['mode']
                if mode not in scored:  # the mode's poses, first setting
                    scored.add(mode)
                    others_oks[mode].process(data_samples=rescored,
                                             data_batch=data)
            if bar is not None:
                bar.update()
    return dict(
        initial=initial.evaluate(count),
        oks_scored=oks_scored.evaluate(count),
        oracle={s: ev.evaluate(count)
                for s, ev in oracles.items()},
        modes={mode: ev.evaluate(count)
               for mode, ev in others.items()},
        modes_oks_scored={mode: ev.evaluate(count)
                          for mode, ev in others_oks.items()},
        score_oks_spearman={name: score_oks_correlation(*lists)
                            for name, lists in pairs.items()})


def upper_bound_table(result: dict) -> str:
    """One markdown table (``analysis.report.markdown_table``): a row per pose
    set, AP / AP50 / AP75 / AR and the AP gain over the initial poses.

    Args:
        result (dict): as :func:`evaluate_upper_bound` returns it.
    """
    ap = METRICS[0][1]
    base = result['initial'][ap]
    columns = [Column('poses', 'poses'), Column('window', 'window')] + [
        Column(key, name, '{:.3f}') for name, key in METRICS
    ] + [Column('gain', 'AP - initial AP', '{:+.3f}')]
    sets = [('initial (centre-offset)', '-', result['initial'])]
    if 'oks_scored' in result:
        sets.append(('initial, scored by true OKS', '-',
                     result['oks_scored']))
    sets += [('oracle', f'{s}x{s}', m) for s, m in result['oracle'].items()]
    sets += [(f'model, mode {mode}', '-', m)
             for mode, m in result['modes'].items()]
    sets += [(f'model, mode {mode}, scored by true OKS', '-', m)
             for mode, m in result.get('modes_oks_scored', {}).items()]
    rows = [dict(metrics, poses=label, window=window,
                 gain=metrics[ap] - base) for label, window, metrics in sets]
    return markdown_table(columns, rows)


def correlation_table(result: dict) -> str:
    """Markdown: the Spearman correlation of each row's pose scores with the
    poses' true OKS (:func:`evaluate_upper_bound`'s ``score_oks_spearman``).
    """
    lines = ['| poses | Spearman rho (pose score, true OKS) |', '|---|---|']
    for name, rho in result.get('score_oks_spearman', {}).items():
        label = 'initial (centre-offset)' if name == 'initial' \
            else f'model, mode {name}'
        lines.append(f'| {label} | {rho:.3f} |')
    return '\n'.join(lines)


def plot_upper_bound(result: dict, path: str, title: str = '') -> None:
    """AP against the window size (the paper's Fig. 2 analysis), as a PNG.

    The oracle is a line over s; the initial poses and each model mode are
    horizontal dashed lines.

    Args:
        result (dict): as :func:`evaluate_upper_bound` returns it.
        path (str): output file (PNG).
        title (str): optional figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    key = METRICS[0][1]
    fig = Figure(figsize=(5.5, 3.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    sizes = list(result['oracle'])
    ap = [result['oracle'][s][key] for s in sizes]
    ax.plot(sizes, ap, 'o-', color='tab:red', label='oracle in s x s window')
    for s, value in zip(sizes, ap):
        ax.annotate(f'{value:.3f}', (s, value), textcoords='offset points',
                    xytext=(0, 6), ha='center', fontsize=8)
    ax.axhline(result['initial'][key], color='tab:green', linestyle='--',
               label=f'initial poses ({result["initial"][key]:.3f})')
    if 'oks_scored' in result:
        value = result['oks_scored'][key]
        ax.axhline(value, color='tab:olive', linestyle='-.',
                   label=f'initial, scored by true OKS ({value:.3f})')
    colours = ['tab:blue', 'tab:purple', 'tab:orange', 'tab:brown']
    for i, (mode, metrics) in enumerate(result['modes'].items()):
        ax.axhline(metrics[key], color=colours[i % len(colours)],
                   linestyle=':', label=f'model, {mode} ({metrics[key]:.3f})')
    ax.margins(y=0.15)
    ax.set_xticks(sizes)
    ax.set_xticklabels([f'{s}x{s}' for s in sizes])
    ax.set_xlabel('local window (cells of the local KEM grid)')
    ax.set_ylabel('COCO AP')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower right')
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
