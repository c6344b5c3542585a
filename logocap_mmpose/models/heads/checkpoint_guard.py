"""Refuse LOGO-CAP head weights of another shape, with a message that says
why (another keypoint count, or other layer widths)."""
from typing import List, Tuple

import torch
import torch.nn as nn


class HeadCheckpointMismatchError(RuntimeError):
    """Weights whose head tensors have other shapes than the config's head
    (another keypoint count or other layer widths)."""


def check_head_state_dict(head: nn.Module, state_dict: dict,
                          prefix: str) -> None:
    """Raise before anything loads when a tensor of ``head`` has another
    shape in ``state_dict``.

    MMEngine's ``load_checkpoint`` (``init_model``, ``tools/test.py``,
    ``MMPoseInferencer``, ``load_from``, ``--resume``) loads with
    ``strict=False`` and only warns about a size mismatch, which would leave
    the head randomly initialised and predicting garbage.

    Args:
        head (nn.Module): a ``LOGOCAPHead`` (``num_keypoints``,
            ``heatmap_layers`` and ``offset_layers`` are read).
        state_dict (dict): the weights being loaded.
        prefix (str): the head's key prefix in ``state_dict``.

    Raises:
        HeadCheckpointMismatchError: naming the checkpoint's keypoint
            count, the config's and the tensors that differ.
    """
    mismatched = []
    for name, value in head.state_dict().items():
        theirs = state_dict.get(prefix + name)
        if torch.is_tensor(theirs) and theirs.shape != value.shape:
            mismatched.append((name, tuple(theirs.shape), tuple(value.shape)))
    if mismatched:
        raise HeadCheckpointMismatchError(
            mismatch_message(head, state_dict, prefix, mismatched))


def checkpoint_keypoints(head: nn.Module, state_dict: dict, prefix: str):
    """The keypoint count of the head in ``state_dict`` (None if unknown),
    read from the last heatmap conv (K + 1 outputs) or offset conv (2K)."""
    heatmap_out = f'{prefix}heatmap_layers.{len(head.heatmap_layers) - 1}'
    offset_out = f'{prefix}offset_layers.{len(head.offset_layers) - 1}'
    if torch.is_tensor(state_dict.get(heatmap_out + '.weight')):
        return state_dict[heatmap_out + '.weight'].shape[0] - 1
    if torch.is_tensor(state_dict.get(offset_out + '.weight')):
        return state_dict[offset_out + '.weight'].shape[0] // 2
    return None


def mismatch_message(head: nn.Module, state_dict: dict, prefix: str,
                     mismatched: List[Tuple[str, tuple, tuple]]) -> str:
    """The error text for :class:`HeadCheckpointMismatchError`."""
    K = head.num_keypoints
    found = checkpoint_keypoints(head, state_dict, prefix)
    shapes = '; '.join(f'{prefix}{name}: checkpoint {ckpt}, model {mine}'
                       for name, ckpt, mine in mismatched[:4])
    more = f' (and {len(mismatched) - 4} more)' if len(mismatched) > 4 else ''
    if found is not None and found != K:
        what = (f'the checkpoint holds a head for {found} keypoints but '
                f'the config builds LOGOCAPHead with num_keypoints={K} '
                '(the dataset meta / keypoint_sigmas of the config)')
    else:
        keypoints = f'{found}' if found is not None else 'an unknown'
        what = (f'the checkpoint holds a head for {keypoints} keypoints '
                f'and the config a head for {K}, but layer widths differ '
                '(in_channels, branch_cfg heatmap_channels / '
                'offset_channels / embedding_channels, cmp_cfg channels or '
                'the Attentive Norm num_mixtures)')
    return (f'these weights do not fit LOGOCAPHead: {what}. Tensors of '
            f'other shapes: {shapes}{more}. Use the config the '
            'checkpoint was trained with; to fine-tune on another '
            'keypoint set, load the weights without their head.* '
            'entries (e.g. init_cfg=dict(type=\'Pretrained\', '
            "prefix='backbone.', checkpoint=...) on the backbone).")
