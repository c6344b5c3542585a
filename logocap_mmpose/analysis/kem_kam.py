"""KEMs and KAMs of one proposal, drawn stage by stage (the paper's Fig. 1).

For one person (a proposal of the centre decoder, in centre-score order,
before the pose NMS) and a few of its keypoints, :func:`kem_kam_stages` runs
the model's own test path on one image and keeps every intermediate result:

1. ``model.dense_maps`` (the estimator's dense path: features, flip and
   scales fused as the config's ``test_cfg`` asks) and ``head.proposals``
   (the decoding ``head.predict`` refines): the **initial pose** (centre
   peak + offsets);
2. then the stages of the one refinement (``models/refinement.py``, with
   ``head.geometry`` and ``head.cmp``): ``local_poses``, the **local KEM**,
   an S x S grid of candidate positions around every initial keypoint
   (scaled by its OKS sigma);
3. ``kams``: the embedding sampled on the local KEMs, through the message
   passing: the **KAM** of every keypoint (clamped to [0, 1], as the test
   modes use it);
4. ``global_kems``: the **global KEM**, an a x a window of the keypoint
   heatmap around the initial keypoint, Gaussian-reweighed (*before*
   adaptation);
5. ``adapt``: the window convolved with the KAM (*after* adaptation);
6. ``decode_windows``: the **final keypoint**, the top-2 average of the
   adapted window, and its score: what ``refine('full')`` returns, since
   ``refine('full')`` is these stages. The ``kems_only`` and ``kams_only``
   estimates are ``refine`` in those modes.

:func:`draw_kem_kam` puts them in one matplotlib figure: an overview of the
initial and final poses on the network input, and one row per keypoint with
four panels (local KEM grid, KAM, global KEM before and after adaptation).
Everything is drawn in input pixels (the image after the test pipeline's
resize), the coordinates the head works in. ``tools/visualize_kem_kam.py``
is the command line.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..models import refinement

# colours of the markers (also in the legend of the overview)
INITIAL = '#ff9f1c'
FINAL = '#2ec4b6'
KEMS_ONLY = '#ffffff'
KAMS_ONLY = '#ff4fd8'


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


@torch.no_grad()
def kem_kam_stages(model: torch.nn.Module, batch: dict,
                   person: int = 0) -> Dict[str, Any]:
    """Every stage of LOGO-CAP's refinement for one proposal of one image.

    Args:
        model (nn.Module): a LOGO-CAP pose estimator (``model.head`` a
            ``LOGOCAPHead`` with its decoder), in eval mode.
        batch (dict): one image through the config's test pipeline, as
            :func:`logocap_mmpose.analysis.prepare_batches` (or
            ``pseudo_collate``) gives it: ``inputs`` [(3, H, W) uint8] and
            ``data_samples`` [PoseDataSample]. Not modified.
        person (int): the proposal, 0 for the highest centre score.

    Returns:
        dict: numpy arrays in input pixels (K keypoints, S the local KEM
        side, a the global KEM side):

        - ``image`` (H, W, 3) uint8 RGB, the network input;
        - ``person``, ``num_proposals`` (valid proposals of the image),
          ``center_score``;
        - ``initial`` (K, 2): the initial pose;
        - ``local_grid`` (K, S, S, 2): the local KEM positions;
        - ``kams`` (K, S, S): the KAMs (clamped to [0, 1]);
        - ``kams_only`` (K, 2): ``refine('kams_only')``;
        - ``global_before`` (K, a, a), ``global_after`` (K, a, a): the
          global KEMs before and after adaptation;
        - ``kems_only`` (K, 2): ``refine('kems_only')``;
        - ``final`` (K, 2), ``final_scores`` (K,): ``refine('full')``, the
          scores times the centre score (as ``head.predict`` scores);
        - ``final_from_maps`` (K, 2): the top-2 decoding of
          ``global_after`` from the initial pose; ``final`` itself, since
          ``refine('full')`` is the drawn stages;
        - ``keypoint_names`` (list), ``skeleton_links`` (list of pairs).

    Raises:
        ValueError: a batch of more than one image, or ``person`` past the
            image's proposals.
        TypeError: a model that is not a ``LOGOCAPPoseEstimator``.
    """
    if len(batch['inputs']) != 1:
        raise ValueError('kem_kam_stages draws one image; got a batch of '
                         f"{len(batch['inputs'])}")
    if not callable(getattr(model, 'dense_maps', None)):
        raise TypeError(f'kem_kam_stages needs a LOGOCAPPoseEstimator (its '
                        f'dense_maps), got {type(model).__name__}')
    head = model.head
    K = head.num_keypoints
    samples = [copy.deepcopy(s) for s in batch['data_samples']]
    data = model.data_preprocessor(
        dict(inputs=list(batch['inputs']), data_samples=samples), False)
    heatmaps, displacements, embedding = model.dense_maps(
        data['inputs'], data['data_samples'])
    initial, center_scores, valid = head.proposals(
        heatmaps, displacements, model.test_cfg or {})
    count = int(valid[0].sum())
    if not 0 <= person < count:
        raise ValueError(f'person {person}: the image has {count} '
                         f'proposals (0 to {count - 1}, by centre score)')
    pose = initial[:, person:person + 1]  # (1, 1, K, 2)
    keypoint_maps = heatmaps[:, :K]

    geometry, cmp = head.geometry, head.cmp
    grid = refinement.local_poses(geometry, pose)  # (1, 1, K, S, S, 2)
    kams = refinement.kams(geometry, cmp, embedding,
                           grid).clamp(0, 1)  # (1, 1, K, S, S)
    before = refinement.global_kems(geometry, keypoint_maps,
                                    pose)  # (1, 1, K, a, a)
    after = refinement.adapt(geometry, before, kams)
    final, scores = refinement.decode_windows(geometry, pose, after)
    kems_only, _, _ = refinement.refine('kems_only', geometry, cmp,
                                        keypoint_maps, embedding, pose)
    kams_only, _, _ = refinement.refine('kams_only', geometry, cmp,
                                        keypoint_maps, embedding, pose)
    center_score = center_scores[0, person]

    image = batch['inputs'][0].permute(1, 2, 0).cpu().numpy()
    cfg = getattr(model, 'cfg', None)
    if cfg is not None and cfg.model.data_preprocessor.get('bgr_to_rgb'):
        image = image[..., ::-1]  # the pipeline's BGR -> RGB for display
    meta = getattr(model, 'dataset_meta', None) or {}
    names = meta.get('keypoint_id2name')
    names = [names[i] for i in range(K)] if names else [
        f'keypoint {i}' for i in range(K)
    ]
    return dict(
        image=np.ascontiguousarray(image).astype(np.uint8),
        person=person,
        num_proposals=count,
        center_score=float(center_score),
        initial=_numpy(pose[0, 0]),
        local_grid=_numpy(grid[0, 0]),
        kams=_numpy(kams[0, 0]),
        kams_only=_numpy(kams_only[0, 0]),
        global_before=_numpy(before[0, 0]),
        global_after=_numpy(after[0, 0]),
        kems_only=_numpy(kems_only[0, 0]),
        final=_numpy(final[0, 0]),
        final_scores=_numpy(scores[0, 0] * center_score),
        final_from_maps=_numpy(final[0, 0]),
        keypoint_names=names,
        skeleton_links=[tuple(int(i) for i in link)
                        for link in meta.get('skeleton_links', [])])


def resolve_keypoints(spec: Optional[Sequence[Union[int, str]]],
                      stages: Dict[str, Any], default: int = 3) -> List[int]:
    """Keypoint indices from indices or names.

    Args:
        spec (Sequence[int | str], optional): indices (``9``, ``'9'``) or
            names (``'left_wrist'``). None: the ``default`` keypoints that
            the refinement moved most (largest ``|final - initial|``).
        stages (dict): from :func:`kem_kam_stages`.
        default (int): how many keypoints when ``spec`` is None.

    Raises:
        ValueError: an unknown name or an index out of range.
    """
    names = stages['keypoint_names']
    K = len(names)
    if spec is None:
        moved = np.linalg.norm(stages['final'] - stages['initial'], axis=-1)
        return [int(i) for i in np.argsort(-moved, kind='stable')[:default]]
    out = []
    for item in spec:
        if isinstance(item, str) and not item.lstrip('-').isdigit():
            if item not in names:
                raise ValueError(f'unknown keypoint {item!r}; known: '
                                 f'{names}')
            out.append(names.index(item))
            continue
        index = int(item)
        if not 0 <= index < K:
            raise ValueError(f'keypoint index {index} out of range 0 to '
                             f'{K - 1}')
        out.append(index)
    return out


def _extent(centre: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> list:
    """imshow extent (left, right, bottom, top) of a map whose cell centres
    lie at ``centre + (xs[j], ys[i])`` (evenly spaced), rows downwards."""
    hx = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 0.5
    hy = (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.5
    return [centre[0] + xs[0] - hx, centre[0] + xs[-1] + hx,
            centre[1] + ys[-1] + hy, centre[1] + ys[0] - hy]


def _limits(ax, box: Sequence[float]) -> None:
    x0, y0, x1, y1 = box
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # image rows downwards
    ax.set_xticks([])
    ax.set_yticks([])


def draw_kem_kam(stages: Dict[str, Any],
                 keypoints: Optional[Sequence[Union[int, str]]] = None,
                 out_file: Optional[str] = None,
                 title: Optional[str] = None,
                 dpi: int = 100) -> Dict[str, Any]:
    """Draw the stages of :func:`kem_kam_stages` in one figure.

    Layout: the overview (column 0, all rows) shows the network input with
    the initial pose (orange, dashed skeleton) and the final pose (teal),
    the chosen keypoints labelled. Then one row per chosen keypoint: the
    local KEM grid on the image, the KAM on that grid (with the KAMs-only
    estimate), the global KEM window before adaptation (with the KEMs-only
    estimate) and after adaptation (with the final keypoint). Every panel
    is in input pixels, so a row's panels share their coordinates.

    Args:
        stages (dict): from :func:`kem_kam_stages`.
        keypoints (Sequence[int | str], optional): see
            :func:`resolve_keypoints`.
        out_file (str, optional): write the figure there (PNG).
        title (str, optional): figure title.
        dpi (int): resolution of the written file.

    Returns:
        dict: ``figure`` (matplotlib ``Figure``, Agg canvas), ``axes``
        (``overview`` and ``rows``: one dict per keypoint with ``local``,
        ``kam``, ``before``, ``after``), ``keypoints`` (indices),
        ``num_panels`` (1 + 4 per keypoint), ``drawn_final`` (n, 2) and
        ``drawn_initial`` (n, 2): the coordinates of the final and initial
        markers as drawn in the ``after`` panels, and ``out_file``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chosen = resolve_keypoints(keypoints, stages)
    names = stages['keypoint_names']
    image = stages['image']
    initial, final = stages['initial'], stages['final']
    H, W = image.shape[:2]
    a = stages['global_before'].shape[-1]
    steps = np.arange(a, dtype=np.float64) - (a - 1) / 2
    rows = max(len(chosen), 1)

    fig = Figure(figsize=(4.2 + 3.0 * 4, 3.0 * rows + 0.6))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 5, width_ratios=[1.4, 1, 1, 1, 1])

    # overview: both poses on the input, zoomed to the person
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(image)
    for pose, colour, style in ((initial, INITIAL, '--'), (final, FINAL,
                                                           '-')):
        for i, j in stages['skeleton_links']:
            ax.plot(pose[[i, j], 0], pose[[i, j], 1], style, color=colour,
                    lw=1.2)
    ax.plot(initial[:, 0], initial[:, 1], 'x', color=INITIAL, ms=5,
            label='initial pose')
    ax.plot(final[:, 0], final[:, 1], 'o', color=FINAL, ms=4, mfc='none',
            label='final pose')
    for k in chosen:
        ax.annotate(names[k], final[k], color='white', fontsize=7,
                    xytext=(3, 3), textcoords='offset points')
    both = np.concatenate((initial, final))
    margin = max(a / 2, 16.0)
    lo = np.maximum(both.min(0) - margin, [-0.5, -0.5])
    hi = np.minimum(both.max(0) + margin, [W - 0.5, H - 0.5])
    if np.any(hi <= lo):  # the pose lies off the input: show all of it
        lo, hi = np.array([-0.5, -0.5]), np.array([W - 0.5, H - 0.5])
    _limits(ax, (lo[0], lo[1], hi[0], hi[1]))
    ax.legend(loc='lower left', fontsize=7, framealpha=0.6)
    ax.set_title(f"person {stages['person']} of {stages['num_proposals']} "
                 f"(centre score {stages['center_score']:.3f})", fontsize=9)
    overview = ax

    panels, drawn_final, drawn_initial = [], [], []
    for r, k in enumerate(chosen):
        p = initial[k]
        cells = stages['local_grid'][k]  # (S, S, 2)
        xs, ys = cells[0, :, 0] - p[0], cells[:, 0, 1] - p[1]
        half = max(abs(xs).max(), abs(ys).max()) * 1.5 + 2
        local_box = (p[0] - half, p[1] - half, p[0] + half, p[1] + half)
        window = _extent(p, steps, steps)
        global_box = (window[0], window[3], window[1], window[2])
        row = {}

        ax = row['local'] = fig.add_subplot(grid[r, 1])
        ax.imshow(image)
        ax.plot(cells[..., 0].ravel(), cells[..., 1].ravel(), '.',
                color='white', ms=2)
        ax.plot([p[0]], [p[1]], 'x', color=INITIAL, ms=7, mew=2)
        _limits(ax, local_box)
        S = cells.shape[0]
        ax.set_title(f'{names[k]}: local KEM {S}x{S}', fontsize=9)

        ax = row['kam'] = fig.add_subplot(grid[r, 2])
        kam = stages['kams'][k]
        ax.imshow(kam, extent=_extent(p, xs, ys), cmap='viridis',
                  interpolation='nearest', vmin=0.0,
                  vmax=max(float(kam.max()), 1e-6))
        ax.plot([p[0]], [p[1]], 'x', color=INITIAL, ms=7, mew=2)
        q = stages['kams_only'][k]
        ax.plot([q[0]], [q[1]], '^', color=KAMS_ONLY, ms=6, mfc='none')
        _limits(ax, local_box)
        ax.set_title(f'KAM (max {kam.max():.2f})', fontsize=9)

        for key, name, estimate, colour, marker in (
                ('before', 'global_before', stages['kems_only'][k],
                 KEMS_ONLY, '+'),
                ('after', 'global_after', final[k], FINAL, 'o')):
            ax = row[key] = fig.add_subplot(grid[r, 3 if key == 'before'
                                                 else 4])
            ax.imshow(image)
            values = stages[name][k]
            ax.imshow(values, extent=window, cmap='magma', alpha=0.7,
                      interpolation='nearest')
            start = ax.plot([p[0]], [p[1]], 'x', color=INITIAL, ms=7,
                            mew=2)[0]
            end = ax.plot([estimate[0]], [estimate[1]], marker, color=colour,
                          ms=8, mew=2, mfc='none')[0]
            _limits(ax, global_box)
            if key == 'before':
                ax.set_title(f'global KEM {a}x{a} (before)', fontsize=9)
            else:
                ax.set_title(f'after adaptation: score '
                             f"{stages['final_scores'][k]:.3f}", fontsize=9)
                drawn_final.append(end.get_xydata()[0])
                drawn_initial.append(start.get_xydata()[0])
        panels.append(row)

    fig.suptitle(title or 'LOGO-CAP: initial pose, local KEM, KAM, global '
                 'KEM before / after adaptation, final keypoint (input px; '
                 'x initial, ^ KAMs only, + KEMs only, o final)',
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if out_file:
        fig.savefig(out_file, dpi=dpi)
    return dict(figure=fig, axes=dict(overview=overview, rows=panels),
                keypoints=chosen, num_panels=len(fig.axes),
                drawn_final=np.asarray(drawn_final).reshape(-1, 2),
                drawn_initial=np.asarray(drawn_initial).reshape(-1, 2),
                out_file=out_file)


def visualize_kem_kam(model: torch.nn.Module, batch: dict, person: int = 0,
                      keypoints: Optional[Sequence[Union[int, str]]] = None,
                      out_file: Optional[str] = None,
                      title: Optional[str] = None) -> Dict[str, Any]:
    """:func:`kem_kam_stages` then :func:`draw_kem_kam`; the summary of the
    drawing with the stages under ``stages``."""
    stages = kem_kam_stages(model, batch, person)
    summary = draw_kem_kam(stages, keypoints, out_file, title)
    summary['stages'] = stages
    return summary
