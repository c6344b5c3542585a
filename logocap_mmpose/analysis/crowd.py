"""Inference cost against the number of people in the image: bottom-up
(LOGO-CAP, DEKR) beside top-down.

A bottom-up model runs its network once per image and refines or decodes
one proposal per person; a top-down model runs its network once per person
box. The images are composites made from coco-mini: ``n`` person crops (the
largest labelled, non-crowd persons of the annotation file, cut at their
boxes) resized into the cells of a grid on a fixed canvas, so that only the
number of people changes between the images, not their size in pixels of
the canvas. The top-down model gets the pasted boxes, i.e. ground-truth
boxes standing in for a person detector; an MMDetection detector can be
timed on the same composites (:func:`time_detector`, random weights) and
added to the top-down time as a separate column. The
bottom-up models get exactly ``n`` proposals (decoding thresholds removed,
as ``analysis/benchmark.py`` forces them), i.e. the work of ``n`` found
people.

``tools/benchmark_crowd.py`` is the command line: one markdown table of
ms/image per model and people count, and a PNG plot of the same.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch.nn as nn

from . import (Column, is_labelled_person, markdown_table, time_test_step)
from .benchmark import forced_proposals

Box = Tuple[float, float, float, float]  # x1, y1, x2, y2


def person_crops(root: str, ann_file: str, img_dir: str,
                 num: int) -> List[np.ndarray]:
    """The ``num`` largest labelled, non-crowd persons as BGR crops.

    Raises:
        ValueError: fewer such persons in the annotation file.
    """
    with open(osp.join(root, ann_file)) as f:
        coco = json.load(f)
    names = {im['id']: im['file_name'] for im in coco['images']}
    people = sorted(
        (a for a in coco['annotations']
         if is_labelled_person(a) and min(a['bbox'][2:]) >= 16),
        key=lambda a: (-a['bbox'][2] * a['bbox'][3], a['id']))
    if len(people) < num:
        raise ValueError(f'{ann_file} holds {len(people)} labelled persons '
                         f'of at least 16 px, {num} needed')
    crops = []
    for ann in people[:num]:
        img = cv2.imread(osp.join(root, img_dir, names[ann['image_id']]))
        x, y, w, h = (int(round(v)) for v in ann['bbox'])
        crops.append(img[y:y + h, x:x + w])
    return crops


def composite(crops: Sequence[np.ndarray],
              size: Tuple[int, int]) -> Tuple[np.ndarray, List[Box]]:
    """Paste ``crops`` into the cells of a near-square grid on a grey
    canvas of ``size`` (w, h), each resized to fit its cell (aspect kept).

    Returns:
        tuple: the (h, w, 3) image and the pasted boxes (x1, y1, x2, y2).
    """
    w, h = size
    cols = math.ceil(math.sqrt(len(crops)))
    rows = math.ceil(len(crops) / cols)
    cell_w, cell_h = w // cols, h // rows
    canvas = np.full((h, w, 3), 114, np.uint8)
    boxes = []
    for i, crop in enumerate(crops):
        scale = min(cell_w / crop.shape[1], cell_h / crop.shape[0])
        cw = max(1, int(crop.shape[1] * scale))
        ch = max(1, int(crop.shape[0] * scale))
        x0 = (i % cols) * cell_w + (cell_w - cw) // 2
        y0 = (i // cols) * cell_h + (cell_h - ch) // 2
        canvas[y0:y0 + ch, x0:x0 + cw] = cv2.resize(crop, (cw, ch))
        boxes.append((float(x0), float(y0), float(x0 + cw), float(y0 + ch)))
    return canvas, boxes


def crowd_images(root: str, counts: Sequence[int], size: Tuple[int, int],
                 out_dir: str, ann_file: str, img_dir: str
                 ) -> Dict[int, Tuple[str, List[Box]]]:
    """One composite per people count, written to ``out_dir`` as JPEG.

    Returns:
        dict: count -> (image path, boxes).
    """
    crops = person_crops(root, ann_file, img_dir, max(counts))
    os.makedirs(out_dir, exist_ok=True)
    images = {}
    for n in counts:
        img, boxes = composite(crops[:n], size)
        path = osp.join(out_dir, f'crowd_{n:03d}.jpg')
        cv2.imwrite(path, img)
        images[n] = (path, boxes)
    return images


def topdown_batch(model: nn.Module, path: str, boxes: Sequence[Box]) -> dict:
    """One batch of the person crops of ``boxes`` through a top-down
    model's test pipeline (as ``mmpose.apis.inference_topdown``)."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    samples = []
    for box in boxes:
        info = dict(img_path=path, bbox=np.array([box], np.float32),
                    bbox_score=np.ones(1, np.float32))
        info.update(model.dataset_meta)
        samples.append(pipeline(info))
    return pseudo_collate(samples)


def time_crowd(models: Dict[str, Tuple[nn.Module, bool]],
               images: Dict[int, Tuple[str, List[Box]]], warmup: int,
               repeats: int, device: str) -> List[dict]:
    """ms per image of every model on every composite.

    Args:
        models (dict): name -> (model, whether it is top-down).
        images (dict): see :func:`crowd_images`.

    Returns:
        list[dict]: rows ``{'people': n, name: ms, ...}``, by count.
    """
    from . import prepare_batches
    rows = {n: dict(people=n) for n in images}
    for name, (model, topdown) in models.items():
        for n, (path, boxes) in images.items():
            if topdown:
                batch = topdown_batch(model, path, boxes)
                ms, _ = time_test_step(model, [batch], warmup, repeats,
                                       device)
            else:
                batch = prepare_batches(model, [path])[0]
                with forced_proposals(model, n):
                    ms, _ = time_test_step(model, [batch], warmup, repeats,
                                           device)
            rows[n][name] = ms
    return [rows[n] for n in sorted(rows)]


def time_detector(config: str, images: Dict[int, Tuple[str, List[Box]]],
                  warmup: int, repeats: int, device: str,
                  seed: int = 0) -> Dict[int, float]:
    """ms per image of an MMDetection detector on every composite.

    The detector (random weights, built from ``config``) runs as
    ``mmdet.apis.inference_detector`` runs it: the config's test pipeline
    prepares the image (untimed, as for the pose models), ``test_step``
    is timed by :func:`~logocap_mmpose.analysis.time_test_step`.

    Args:
        config (str): MMDetection config, a file or ``mmdet::path.py``.
        images (dict): see :func:`crowd_images`.
        warmup, repeats (int): untimed and timed runs per image.
        device (str): torch device.
        seed (int): torch seed of the random weights.

    Returns:
        dict: people count -> ms per image.
    """
    import torch
    from mmdet.apis import init_detector
    from mmdet.utils import get_test_pipeline_cfg
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope

    from . import config_file
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = init_detector(config_file(config), None, device=device)
        pipeline = Compose(get_test_pipeline_cfg(model.cfg))
        times = {}
        for n, (path, _) in images.items():
            batch = pseudo_collate([pipeline(dict(img_path=path, img_id=0))])
            times[n], _ = time_test_step(model, [batch], warmup, repeats,
                                         device)
    return times


def add_detector_columns(rows: List[dict], detector: str,
                         times: Dict[int, float],
                         topdown: Sequence[str]) -> List[str]:
    """Add a detector's time to the rows of :func:`time_crowd`, alone and
    added to each top-down model's time.

    Args:
        rows (list[dict]): rows ``{'people': n, name: ms, ...}``, changed in
            place.
        detector (str): column name of the detector.
        times (dict): people count -> detector ms (:func:`time_detector`).
        topdown (Sequence[str]): names of the top-down models' columns.

    Returns:
        list[str]: the new column names, in order.
    """
    for row in rows:
        row[detector] = times[row['people']]
        for name in topdown:
            row[f'{name} + {detector}'] = row[name] + row[detector]
    return [detector] + [f'{name} + {detector}' for name in topdown]


def crowd_table(rows: List[dict], names: Sequence[str]) -> str:
    """Markdown: one row per people count, ms/image per model."""
    columns = [Column('people', 'people')] + [
        Column(name, f'{name} (ms)', '{:.1f}') for name in names]
    return markdown_table(columns, rows)


def crowd_plot(rows: List[dict], names: Sequence[str], path: str,
               title: str) -> None:
    """PNG: ms/image against people per image, one line per model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    people = [r['people'] for r in rows]
    for name in names:
        ax.plot(people, [r[name] for r in rows], marker='o', label=name)
    ax.set_xscale('log', base=2)
    ax.set_xticks(people)
    ax.set_xticklabels([str(p) for p in people])
    ax.set_xlabel('people per image')
    ax.set_ylabel('ms / image')
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
