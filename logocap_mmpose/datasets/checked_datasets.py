"""MMPose's COCO-style datasets that say how to fix a missing data folder.

A config run without its data (e.g. ``mim train mmpose <config>`` with no
COCO in ``data/coco/``) makes MMPose stop at an assertion (``Annotation file
... does not exist``) that names no fix. The datasets here check, before the
annotations load, that the annotation file exists and, for training data,
that the image folder does, and raise a one-line ``FileNotFoundError`` that
names the missing path, the dataset's ``data_root`` and how to point the
config at the data. Otherwise they are MMPose's datasets (same arguments,
same meta, same samples):

- ``LOGOCAPCocoDataset``: MMPose's ``CocoDataset``;
- ``LOGOCAPCrowdPoseDataset``: MMPose's ``CrowdPoseDataset``;
- ``LOGOCAPOCHumanDataset``: MMPose's ``OCHumanDataset``.
"""
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.fileio import exists
from mmpose.datasets import CocoDataset, CrowdPoseDataset, OCHumanDataset
from mmpose.registry import DATASETS

# the dataloaders whose data_root a user overrides, in --cfg-options order
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# what the evaluator's annotation file is called when it cannot be named
VAL_ANN_PLACEHOLDER = 'annotations/<val annotation file>'


def relative_to(path: str, root: Optional[str]) -> Optional[str]:
    """``path`` relative to ``root``, or None when it is not under it."""
    if not root:
        return None
    rel = osp.relpath(path, root)
    return None if rel.startswith('..') else rel


def data_root_fix(val_ann_file: str = VAL_ANN_PLACEHOLDER) -> str:
    """How to point a config at a data folder ``DIR``: the
    ``--cfg-options`` of MMPose's tools and this project's ``--data-root``.

    Args:
        val_ann_file (str): the val annotation file relative to ``DIR``.
    """
    options = [f'{loader}.dataset.data_root=DIR' for loader in DATALOADERS]
    options.append(f'val_evaluator.ann_file=DIR/{val_ann_file}')
    return ('override data_root, e.g. --cfg-options ' + ' '.join(options) +
            " (this project's tools/ take --data-root DIR)")


def missing_data_message(what: str, path: str, dataset: str,
                         data_root: Optional[str],
                         val_ann_file: str = VAL_ANN_PLACEHOLDER) -> str:
    """The one-line error of a dataset whose data is not where it looks.

    Args:
        what (str): e.g. ``'annotation file'`` or ``'image folder'``.
        path (str): the path that does not exist.
        dataset (str): the dataset's class name.
        data_root (str, optional): the dataset's ``data_root``.
        val_ann_file (str): the val annotation file, relative to the data
            folder, for the evaluator override.
    """
    where = f'under {data_root}' if data_root else 'there'
    return (f'{what} {path} does not exist ({dataset} with data_root='
            f'{data_root!r}): put the dataset {where}, or '
            f'{data_root_fix(val_ann_file)}')


class DataPathCheckMixin:
    """Check the data paths of a COCO-style dataset before the annotations
    load, and name the fix when one is missing.

    Mixed in before an MMPose ``BaseCocoStyleDataset`` subclass; checks the
    annotation file and, for training data (``test_mode=False``), the image
    folder ``data_prefix['img']``.
    """

    def _load_annotations(self) -> Tuple[List[dict], List[dict]]:
        """Check the data paths, then MMPose's ``_load_annotations``."""
        self.check_data_paths()
        return super()._load_annotations()

    def missing_data_path(self) -> Optional[Tuple[str, str]]:
        """What is missing, as (what, path); None when nothing is."""
        if not exists(self.ann_file):
            return 'annotation file', self.ann_file
        img_dir = self.data_prefix.get('img', '')
        if not self.test_mode and img_dir and not exists(img_dir):
            return 'image folder', img_dir
        return None

    def check_data_paths(self) -> None:
        """Raise ``FileNotFoundError`` (one line, with the fix) when the
        annotation file or the training image folder is missing."""
        missing = self.missing_data_path()
        if missing is None:
            return
        what, path = missing
        val_ann_file = VAL_ANN_PLACEHOLDER
        if self.test_mode:  # the evaluator reads this dataset's file
            val_ann_file = relative_to(self.ann_file,
                                       self.data_root) or val_ann_file
        raise FileNotFoundError(
            missing_data_message(what, path, type(self).__name__,
                                 self.data_root, val_ann_file))


@DATASETS.register_module()
class LOGOCAPCocoDataset(DataPathCheckMixin, CocoDataset):
    """MMPose's ``CocoDataset`` that names the fix when its data is missing
    (see :class:`DataPathCheckMixin`)."""


@DATASETS.register_module()
class LOGOCAPCrowdPoseDataset(DataPathCheckMixin, CrowdPoseDataset):
    """MMPose's ``CrowdPoseDataset`` that names the fix when its data is
    missing (see :class:`DataPathCheckMixin`)."""


@DATASETS.register_module()
class LOGOCAPOCHumanDataset(DataPathCheckMixin, OCHumanDataset):
    """MMPose's ``OCHumanDataset`` that names the fix when its data is
    missing (see :class:`DataPathCheckMixin`)."""
