"""Convert the authors' released LOGO-CAP checkpoints into MMPose checkpoints.

The authors publish ``logocap-hrnet-w32-coco.pth.tar`` and
``logocap-hrnet-w48-coco.pth.tar``: bare state dicts of their whole model
(``backbone.*`` HRNet plus the head layers ``transition_*``,
``final_layer_*`` and ``joints_mlp.*``). :func:`convert_official_checkpoint`
renames every key to the ``BottomupPoseEstimator`` (HRNet + LOGOCAPHead)
layout (``models/heads/official_keys.py``), negates the offset layer (sign
convention), checks every key and shape against the model built from the
target config, and writes an MMEngine checkpoint with COCO's dataset meta.
The converted weights are meant for the ``*_official_*`` configs, which
decode as the authors' code does.

``tools/convert_official_checkpoint.py`` is the command line for it.
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor

from ..models.heads.official_keys import VALUE_NOTES, official_model_key

# HRNet width -> channels of the concatenated stride-4 features (head input)
HEAD_INPUT_CHANNELS = {'w32': 480, 'w48': 720}
OFFICIAL_CONFIGS = {
    'w32': 'configs/logocap/coco/logocap_hrnet-w32_official_coco-512x512.py',
    'w48': 'configs/logocap/coco/logocap_hrnet-w48_official_coco-640x640.py',
}
# keys only the authors' head has (the file is a LOGO-CAP checkpoint)
SIGNATURE_KEYS = ('transition_cls.0.weight', 'final_layer_reg.weight',
                  'joints_mlp.0.weight')


class OfficialCheckpointError(ValueError):
    """The file cannot be converted; the message names the problem."""


def official_config(arch: str) -> str:
    """Path of the official config for ``arch`` ('w32' or 'w48'), from the
    repository or from the installed package's ``.mim`` copy."""
    if arch not in OFFICIAL_CONFIGS:
        raise OfficialCheckpointError(
            f'unknown arch {arch!r}; expected one of '
            f'{sorted(OFFICIAL_CONFIGS)}')
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    candidates = [
        osp.join(osp.dirname(package), OFFICIAL_CONFIGS[arch]),
        osp.join(package, '.mim', OFFICIAL_CONFIGS[arch]),
    ]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'official {arch} config not found at '
                            f'{candidates}')


def read_official_state_dict(path: str) -> Dict[str, Tensor]:
    """The authors' state dict from ``path``.

    Accepts a bare state dict or one wrapped under ``state_dict`` or
    ``model``, with or without the ``module.`` prefix of
    ``DistributedDataParallel``. Loads with ``weights_only=True`` (no code
    from the file runs).

    Raises:
        OfficialCheckpointError: unreadable (missing, truncated, corrupt)
            file, or not a dict of tensors.
    """
    if not osp.isfile(path):
        raise OfficialCheckpointError(f'{path}: no such file')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Unsupported global' in str(err):
            raise OfficialCheckpointError(
                f'{path} holds Python objects other than tensors, which '
                'are not loaded without trusting the file; load it '
                'yourself and save its state dict alone '
                f'(torch.save(state_dict, ...)). Details: {err}') from err
        raise OfficialCheckpointError(
            f'{path} could not be read as a PyTorch checkpoint (truncated '
            f'or corrupt file?): {err}') from err
    except Exception as err:  # zip / pickle / EOF errors of torch.load
        raise OfficialCheckpointError(
            f'{path} could not be read as a PyTorch checkpoint (truncated '
            f'or corrupt file?): {type(err).__name__}: {err}') from err
    if isinstance(obj, Mapping):
        for wrapper in ('state_dict', 'model'):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise OfficialCheckpointError(
            f'{path} is not a LOGO-CAP checkpoint: it holds a '
            f'{type(obj).__name__}, not a state dict')
    not_tensors = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise OfficialCheckpointError(
            f'{path} is not a LOGO-CAP checkpoint: entries that are not '
            f'tensors: {not_tensors[:5]}')
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in obj.items())


def official_arch(state_dict: Mapping[str, Tensor],
                  name: str = 'the checkpoint') -> str:
    """'w32' or 'w48', from the width of the authors' head input.

    Raises:
        OfficialCheckpointError: not a LOGO-CAP checkpoint in the authors'
            layout, or an unknown width.
    """
    if any(k.startswith('head.') for k in state_dict):
        raise OfficialCheckpointError(
            f'{name} is already in the MMPose layout (keys head.*); load it '
            'directly, it needs no conversion')
    missing = [k for k in SIGNATURE_KEYS if k not in state_dict]
    if missing:
        sample = list(state_dict)[:3]
        raise OfficialCheckpointError(
            f'{name} is not a LOGO-CAP checkpoint of the authors: it lacks '
            f'{missing} (their head); its first keys are {sample}')
    channels = state_dict['transition_cls.0.weight'].shape[1]
    for arch, expected in HEAD_INPUT_CHANNELS.items():
        if channels == expected:
            return arch
    raise OfficialCheckpointError(
        f'{name} has a {channels}-channel head input; the authors released '
        f'HRNet-W32 ({HEAD_INPUT_CHANNELS["w32"]}) and HRNet-W48 '
        f'({HEAD_INPUT_CHANNELS["w48"]}) models only')


def convert_state_dict(
        state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Rename every key to the ``BottomupPoseEstimator`` layout and negate
    the offset layer (see ``models/heads/official_keys.py``).

    Raises:
        OfficialCheckpointError: keys that belong to no known layer.
    """
    converted, unknown = OrderedDict(), []
    negate = tuple('head.' + prefix for prefix in VALUE_NOTES)
    for key, value in state_dict.items():
        try:
            name = official_model_key(key)
        except KeyError:
            unknown.append(key)
            continue
        converted[name] = -value if name.startswith(negate) else value
    if unknown:
        raise OfficialCheckpointError(
            f'{len(unknown)} keys belong to no layer of LOGO-CAP: '
            f'{unknown[:10]}')
    return converted


def check_against_model(converted: Mapping[str, Tensor],
                        reference: Mapping[str, Tensor],
                        name: str = 'the checkpoint',
                        config: str = 'the config') -> None:
    """Every key of the model present, nothing else, every shape equal.

    Raises:
        OfficialCheckpointError: listing the missing, unexpected and
            mismatched keys.
    """
    missing = [k for k in reference if k not in converted]
    unexpected = [k for k in converted if k not in reference]
    mismatched = [
        f'{k}: {tuple(converted[k].shape)} vs {tuple(reference[k].shape)}'
        for k in reference
        if k in converted and converted[k].shape != reference[k].shape
    ]
    problems = []
    if missing:
        problems.append(f'{len(missing)} keys of the model are missing '
                        f'from the checkpoint, e.g. {missing[:5]}')
    if unexpected:
        problems.append(f'{len(unexpected)} keys of the checkpoint are not '
                        f'in the model, e.g. {unexpected[:5]}')
    if mismatched:
        problems.append(f'{len(mismatched)} shapes differ (checkpoint vs '
                        f'model), e.g. {mismatched[:5]}')
    if problems:
        raise OfficialCheckpointError(
            f'{name} does not fit the model of {config}: ' +
            '; '.join(problems))


def coco_dataset_meta() -> dict:
    """COCO's dataset meta, as MMPose's ``CocoDataset`` gives it."""
    from mmpose.datasets import CocoDataset
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo(dict(CocoDataset.METAINFO))


def model_state_from_config(config: str) -> Dict[str, Tensor]:
    """State dict of the (untrained) model that ``config`` builds."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    model = MODELS.build(Config.fromfile(config).model)
    return model.state_dict()


def convert_official_checkpoint(src: str,
                                dst: Optional[str] = None,
                                arch: Optional[str] = None,
                                config: Optional[str] = None) -> dict:
    """Convert the authors' checkpoint ``src`` and save it to ``dst``.

    Args:
        src (str): the authors' checkpoint (``logocap-hrnet-w32-coco.pth.tar``
            or ``logocap-hrnet-w48-coco.pth.tar``).
        dst (str, optional): output path; nothing is written when None.
        arch (str, optional): 'w32' or 'w48'; checked against the weights
            (inferred from them when None).
        config (str, optional): the config whose model must load the result
            with strict key checking; the official config of the arch when
            None.

    Returns:
        dict: the MMEngine checkpoint ``{'state_dict', 'meta':
        {'dataset_meta'}}``, plus ``arch`` and ``config`` used (not saved).

    Raises:
        OfficialCheckpointError: with the reason (unreadable file, not a
            LOGO-CAP checkpoint, architecture mismatch, keys or shapes that
            do not fit the config's model).
    """
    state_dict = read_official_state_dict(src)
    found = official_arch(state_dict, src)
    channels = HEAD_INPUT_CHANNELS[found]
    if arch is not None:
        arch = arch.lower()
        if arch not in HEAD_INPUT_CHANNELS:
            raise OfficialCheckpointError(
                f'unknown arch {arch!r}; expected one of '
                f'{sorted(HEAD_INPUT_CHANNELS)}')
        if arch != found:
            raise OfficialCheckpointError(
                f'{src} is an HRNet-{found.upper()} checkpoint ({channels}-'
                f'channel head input) but arch {arch} was asked for')
    if config is None:
        config = official_config(found)
    else:
        from mmengine.config import Config
        wanted = Config.fromfile(config).model.head.in_channels
        if wanted != channels:
            widths = {c: a for a, c in HEAD_INPUT_CHANNELS.items()}
            raise OfficialCheckpointError(
                f'{src} is an HRNet-{found.upper()} checkpoint ({channels}-'
                f'channel head input) but {config} builds a {wanted}-channel '
                f'head (HRNet-{widths.get(wanted, "?").upper()})')
    converted = convert_state_dict(state_dict)
    check_against_model(converted, model_state_from_config(config), src,
                        config)
    checkpoint = dict(
        state_dict=converted, meta=dict(dataset_meta=coco_dataset_meta()))
    if dst is not None:
        torch.save(checkpoint, dst)
    return dict(checkpoint, arch=found, config=config)
