"""ONNX export of LOGO-CAP's dense network, and the rest of inference on the
exported graph's outputs.

The part of LOGO-CAP that is a fixed graph is the dense network: (optionally
the data preprocessor's normalisation,) backbone, neck and the head's three
conv branches, i.e. ``model.head.forward(model.extract_feat(inputs))``, which
returns

- ``heatmaps`` (B, K+1, h, w): keypoint heatmaps, the person centre last;
- ``displacements`` (B, 2K, h, w): centre-to-keypoint offsets;
- ``embedding`` (B, C, h, w): the features the local KEMs sample.

:func:`export_onnx` writes that graph. Everything after it depends on the
data (how many centres pass the NMS, which cells the KEMs read): centre NMS
and initial poses (the codec), local KEMs, convolutional message passing
(KAMs), global KEMs, contextual adaptation, top-2 decoding and pose NMS.
:func:`predict_from_maps` fuses the flip pair as the head does and hands the
three maps to ``head.predict_from_maps`` (the code path of
``model.test_step`` after the network, ``test_cfg.mode`` included), and
:func:`onnx_inference` runs a whole test batch (data preprocessing, the
ONNX graph on the image and its flip, the rest) and returns the data
samples that ``model.test_step`` returns. Both take an optional
``refinement`` (:class:`~.refinement_export.ONNXRefinement`, the second
exported graph of ``refinement_export.py``): the refinement (local KEMs to
top-2 decoding) then runs in onnxruntime too, handed to
``head.predict_from_maps`` as its ``refine_fn``, and only the flip fusion,
the proposal decoding (centre NMS, ``decoder.decode_batch``) and the pose
NMS and packing stay in PyTorch / numpy. Test settings the deployed model
cannot honour are refused first (``settings.py``).

The exported graph has a fixed input height and width (the backbone's
"SAME" padding and the neck's resize sizes are traced as constants) and,
by default, a free batch size. :func:`onnx_inference` pads smaller images
at the bottom and right to that size (as MMPose pads a test batch; the head
then decodes only the image's own cells) and refuses larger ones.
"""
import json
import warnings
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.inference import dense_outputs
from ..models.pose_estimator import unpadded_groups
from ._imports import import_optional
from .refinement_export import make_session
from .settings import check_test_cfg

OUTPUT_NAMES = ('heatmaps', 'displacements', 'embedding')
INPUT_NAME = 'inputs'
META_PREPROCESS = 'logocap_preprocess'
META_OUTPUTS = 'logocap_outputs'

Maps = Tuple[Tensor, Tensor, Tensor]


def preprocess_from_config(cfg) -> dict:
    """The normalisation of a config's ``PoseDataPreprocessor``.

    Args:
        cfg (Config | dict): a full config (with ``model.data_preprocessor``)
            or the data preprocessor config itself.

    Returns:
        dict: ``mean`` and ``std`` (3 floats each, in the order of the
        channels after the optional conversion) and ``bgr_to_rgb`` (bool).
    """
    pre = cfg['model']['data_preprocessor'] if 'model' in cfg else cfg
    mean = pre.get('mean') or [0.0, 0.0, 0.0]
    std = pre.get('std') or [1.0, 1.0, 1.0]
    return dict(mean=[float(v) for v in mean], std=[float(v) for v in std],
                bgr_to_rgb=bool(pre.get('bgr_to_rgb', False)))


class DenseNetwork(nn.Module):
    """``model.head.forward(model.extract_feat(x))`` as one module.

    Args:
        model (BottomupPoseEstimator): a LOGO-CAP model (backbone, neck,
            ``LOGOCAPHead``).
        preprocess (dict, optional): :func:`preprocess_from_config`; when
            given, the module takes the raw images (B, 3, H, W), float BGR
            in 0..255, and applies the channel conversion and
            ``(x - mean) / std`` first, as the data preprocessor does.
            Without it the module takes the preprocessed inputs.
    """

    def __init__(self, model: nn.Module, preprocess: Optional[dict] = None):
        super().__init__()
        self.model = model
        self.preprocess = dict(preprocess) if preprocess else None
        if self.preprocess:
            self.register_buffer(
                'mean', torch.tensor(self.preprocess['mean']).view(1, 3, 1,
                                                                   1),
                persistent=False)
            self.register_buffer(
                'std', torch.tensor(self.preprocess['std']).view(1, 3, 1, 1),
                persistent=False)

    def forward(self, inputs: Tensor) -> Maps:
        """(B, 3, H, W) -> heatmaps (B, K+1, h, w), displacements
        (B, 2K, h, w), embedding (B, C, h, w)."""
        if self.preprocess:
            if self.preprocess['bgr_to_rgb']:
                inputs = torch.cat(
                    (inputs[:, 2:3], inputs[:, 1:2], inputs[:, 0:1]), 1)
            inputs = (inputs - self.mean) / self.std
        model = self.model
        feats = model.backbone(inputs)
        if model.with_neck:
            feats = traceable_neck(model.neck, feats)
        heatmaps, displacements, embedding = model.head.forward(feats)
        return heatmaps, displacements, embedding


def traceable_neck(neck: nn.Module, feats: Sequence[Tensor]):
    """``neck(feats)``, with MMPose's ``FeatureMapProcessor`` concatenation
    written so that a trace keeps the resize size symbolic (MMPose's
    ``resize`` turns it into Python ints, which a trace fixes): one graph
    then serves every input height and width. Other necks run as they are.
    """
    from mmpose.models.necks import FeatureMapProcessor
    if not (isinstance(neck, FeatureMapProcessor) and neck.concat
            and neck.scale_factor == 1.0):
        return neck(feats)
    if neck.select_index is not None:
        feats = [feats[i] for i in neck.select_index]
    size = feats[0].shape[-2:]
    x = torch.cat([
        F.interpolate(f, size=size, mode='bilinear',
                      align_corners=neck.align_corners) for f in feats
    ], 1)
    return [F.relu(x) if neck.apply_relu else x]


def export_onnx(model: nn.Module,
                path: str,
                input_shape: Tuple[int, int],
                preprocess: Optional[dict] = None,
                dynamic_batch: bool = True,
                opset_version: int = 17) -> str:
    """Export the dense network of a LOGO-CAP model to ONNX.

    Uses PyTorch's TorchScript-based exporter (``dynamo=False``). The graph
    takes ``inputs`` (B, 3, H, W) float32 and returns ``heatmaps``,
    ``displacements`` and ``embedding`` (see the module docstring). The
    normalisation (if included) and the output names are written to the
    model's metadata (``logocap_preprocess``, ``logocap_outputs``), which
    :class:`ONNXDenseNetwork` reads.

    Args:
        model (BottomupPoseEstimator): the model (any device; it is put in
            eval mode).
        path (str): output ``.onnx`` file.
        input_shape (tuple): (H, W) of the graph's input, e.g. the codec's
            ``input_size[::-1]`` for square images.
        preprocess (dict, optional): include this normalisation
            (:func:`preprocess_from_config`); the graph then takes raw BGR
            images in 0..255.
        dynamic_batch (bool): leave the batch size free (else 1).
        opset_version (int): ONNX opset.

    Returns:
        str: ``path``.

    Raises:
        ImportError: ``onnx`` is not installed (one line, with the fix).
    """
    onnx = import_optional('onnx', 'the ONNX export (export_onnx)')

    model.eval()
    net = DenseNetwork(model, preprocess).eval()
    device = next(model.parameters()).device
    H, W = (int(v) for v in input_shape)
    dummy = torch.rand(1, 3, H, W, device=device)
    if preprocess:
        dummy = dummy * 255
    axes = {name: {0: 'batch'} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with torch.no_grad(), warnings.catch_warnings():
        # the shape arithmetic the tracer warns about (SAME padding, resize
        # sizes, the head's channel check) is meant to be constant here
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            net, (dummy, ),
            path,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes if dynamic_batch else None,
            opset_version=opset_version,
            do_constant_folding=True,
            dynamo=False)
    graph = onnx.load(path)
    for key, value in ((META_PREPROCESS, json.dumps(net.preprocess)),
                       (META_OUTPUTS, json.dumps(list(OUTPUT_NAMES)))):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, path)
    return path


class ONNXDenseNetwork:
    """An exported dense network run by onnxruntime.

    Args:
        path (str): ``.onnx`` file written by :func:`export_onnx`.
        providers (Sequence[str], optional): onnxruntime execution providers
            (default: CPU).
        threads (int, optional): onnxruntime intra-op threads (default:
            onnxruntime's choice).

    Attributes:
        preprocess (dict | None): the normalisation inside the graph.
        input_shape (tuple): (H, W) the graph takes.
        batch_size (int | None): the graph's fixed batch size, or None.
    """

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        self.session = make_session(path, providers, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.preprocess = json.loads(meta.get(META_PREPROCESS, 'null'))
        self.output_names = json.loads(
            meta.get(META_OUTPUTS, json.dumps(list(OUTPUT_NAMES))))
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        if not all(isinstance(v, int) for v in spec.shape[2:]):
            raise ValueError(f'{path}: the graph input has no fixed height '
                             f'and width ({spec.shape})')
        self.input_shape = tuple(spec.shape[2:])
        self.batch_size = spec.shape[0] if isinstance(spec.shape[0],
                                                      int) else None

    def __call__(self, inputs: np.ndarray) -> Tuple[np.ndarray, ...]:
        """(B, 3, H, W) float32 -> heatmaps, displacements, embedding."""
        inputs = np.ascontiguousarray(inputs, np.float32)
        if tuple(inputs.shape[2:]) != self.input_shape:
            raise ValueError(f'the graph takes {self.input_shape} inputs, '
                             f'got {tuple(inputs.shape[2:])}')
        b = self.batch_size
        if b is None or len(inputs) == b:
            return tuple(
                self.session.run(self.output_names,
                                 {self.input_name: inputs}))
        # a fixed batch: run chunks of b rows, the last one zero-padded
        n = len(inputs)
        chunks = []
        for start in range(0, n, b):
            part = inputs[start:start + b]
            if len(part) < b:
                part = np.concatenate(
                    (part, np.zeros((b - len(part), *part.shape[1:]),
                                    np.float32)))
            chunks.append(
                self.session.run(self.output_names, {self.input_name: part}))
        return tuple(
            np.concatenate([c[i] for c in chunks])[:n]
            for i in range(len(self.output_names)))


def predict_from_maps(model: nn.Module,
                      maps: Sequence[Tensor],
                      data_samples: list,
                      flipped_maps: Optional[Sequence[Tensor]] = None,
                      refinement: Optional[Callable] = None):
    """The poses of ``model.test_step`` from the dense network's outputs.

    Fuses the flip pair as ``head.predict`` does, runs
    ``model.head.predict_from_maps`` with ``model.test_cfg`` (with
    ``refinement``: its refinement step replaced by the graph), then
    ``model.add_pred_to_datasample`` (input -> image coordinates), exactly
    the steps of ``model.predict`` after the network.

    Args:
        model (BottomupPoseEstimator): the LOGO-CAP model.
        maps (Sequence[Tensor]): heatmaps (B, K+1, h, w), displacements
            (B, 2K, h, w), embedding (B, C, h, w) of the images, on the
            model's device.
        data_samples (list[PoseDataSample]): the batch's data samples (as
            ``model.data_preprocessor`` returns them: ``pad_shape`` marks
            each image's own size).
        flipped_maps (Sequence[Tensor], optional): the maps of the
            horizontally flipped images; required when
            ``model.test_cfg.flip_test`` is set.
        refinement (ONNXRefinement, optional): the exported refinement
            graph (its mode must be ``model.test_cfg``'s); None: PyTorch.

    Returns:
        list[PoseDataSample]: ``data_samples`` with ``pred_instances``
        (keypoints in image pixels) and, with ``test_cfg.output_heatmaps``,
        ``pred_fields``.

    Raises:
        ValueError: a test setting the deployed model cannot honour
            (:func:`~.settings.check_test_cfg`).
    """
    check_test_cfg(model.test_cfg, refinement)
    flip = model.test_cfg.get('flip_test', False)
    if flip and flipped_maps is None:
        raise ValueError('test_cfg.flip_test is set: pass the maps of the '
                         'flipped images as flipped_maps')
    maps = tuple(maps)
    if len(maps) != 3 or not all(torch.is_tensor(m) for m in maps):
        raise TypeError('expected (heatmaps, displacements, embedding) '
                        'tensors')
    feats = [maps, tuple(flipped_maps)] if flip else maps
    flip_indices = data_samples[0].metainfo['flip_indices'] if flip else None
    # the flip fusion of head.predict, on the maps instead of the features
    fused = dense_outputs(tuple, feats, flip, flip_indices)
    preds = model.head.predict_from_maps(
        *fused, data_samples, test_cfg=model.test_cfg,
        refine_fn=None if refinement is None else refinement.refine)
    if isinstance(preds, tuple):
        instances, fields = preds
    else:
        instances, fields = preds, None
    return model.add_pred_to_datasample(instances, fields, data_samples)


def _pad_to(x: Tensor, shape: Tuple[int, int], value: Union[float, Tensor]
            ) -> Tensor:
    """Pad (B, 3, h, w) at the bottom and right to (H, W) with ``value``
    (a scalar, or a (3,) per-channel tensor)."""
    H, W = shape
    h, w = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f'the image is {h}x{w} but the ONNX graph takes at '
                         f'most {H}x{W}: export it with --input-shape large '
                         'enough for the test resize of your images')
    if (h, w) == (H, W):
        return x
    if torch.is_tensor(value):
        out = value.to(x).view(1, -1, 1, 1).expand(x.shape[0], -1, H,
                                                   W).clone()
        out[..., :h, :w] = x
        return out
    return F.pad(x, (0, W - w, 0, H - h), value=float(value))


def choose_network(networks: Sequence[Callable],
                   shape: Tuple[int, int]) -> Callable:
    """The dense graph for images of ``shape`` (h, w): the one whose input
    shape equals it, else the smallest (in area) that holds it (the image
    is then padded).

    Raises:
        ValueError: no graph is large enough.
    """
    h, w = shape
    fits = [n for n in networks
            if n.input_shape[0] >= h and n.input_shape[1] >= w]
    if not fits:
        sizes = ', '.join(f'{n.input_shape[0]}x{n.input_shape[1]}'
                          for n in networks)
        raise ValueError(f'the image is {h}x{w} but the ONNX graph takes at '
                         f'most {sizes}: export it with --input-shape large '
                         'enough for the test resize of your images')
    return min(fits, key=lambda n: (tuple(n.input_shape) != (h, w),
                                    n.input_shape[0] * n.input_shape[1]))


def onnx_inference(model: nn.Module,
                   network: Union[Callable, Sequence[Callable]],
                   data: dict,
                   refinement: Optional[Callable] = None) -> list:
    """``model.test_step(data)`` with the dense network replaced by
    ``network`` (e.g. an :class:`ONNXDenseNetwork`) and, optionally, the
    refinement by ``refinement`` (an
    :class:`~.refinement_export.ONNXRefinement`).

    The batch goes through ``model.data_preprocessor``; its images are
    grouped by their own size (as ``LOGOCAPPoseEstimator`` does), each
    group is padded to the graph's input shape, run through ``network``
    together with its horizontal flip when ``test_cfg.flip_test`` is set,
    and decoded and refined by :func:`predict_from_maps`.

    Args:
        model (BottomupPoseEstimator): the LOGO-CAP model the graph was
            exported from (its head does the rest; its backbone is unused).
        network (Callable | Sequence[Callable]): numpy (B, 3, H, W) float32
            -> (heatmaps, displacements, embedding) numpy arrays, with
            attributes ``input_shape`` (H, W) and ``preprocess`` (dict or
            None: whether the graph normalises raw images itself). Several
            graphs (one per canvas size): each group of images takes the
            one :func:`choose_network` picks.
        data (dict): a test batch (``inputs``: list of (3, h, w) uint8 BGR
            tensors, ``data_samples``), as the test dataloader gives it.
        refinement (ONNXRefinement, optional): run the refinement in
            onnxruntime (None: ``model.head`` in PyTorch).

    Returns:
        list[PoseDataSample]: as ``model.test_step(data)``.

    Raises:
        ValueError: a test setting the deployed model cannot honour
            (:func:`~.settings.check_test_cfg`).
    """
    check_test_cfg(model.test_cfg, refinement)
    processed = model.data_preprocessor(data, False)
    inputs, samples = processed['inputs'], processed['data_samples']
    device = inputs.device
    flip = model.test_cfg.get('flip_test', False)
    networks = list(network) if isinstance(network, (list, tuple)) else \
        [network]
    for (h, w), index in unpadded_groups(samples, tuple(inputs.shape[-2:])):
        network = choose_network(networks, (h, w))
        raw = bool(getattr(network, 'preprocess', None))
        shape = tuple(network.input_shape)
        if raw:  # the graph normalises: raw BGR images, padded with the mean
            pre = network.preprocess
            x = torch.stack([data['inputs'][i] for i in index]).float()
            x = x[..., :h, :w]
            mean = torch.tensor(pre['mean'])
            if pre['bgr_to_rgb']:
                mean = mean.flip(0)  # the pad value in BGR order
            x = _pad_to(x, shape, mean)
        else:
            x = _pad_to(inputs[index, :, :h, :w], shape, 0.0)
        batch = torch.cat((x, x.flip(-1))) if flip else x
        outputs = [
            torch.from_numpy(np.asarray(o)).to(device)
            for o in network(batch.detach().cpu().numpy())
        ]
        group = [samples[i] for i in index]
        if flip:
            n = len(index)
            predict_from_maps(model, [o[:n] for o in outputs], group,
                              [o[n:] for o in outputs], refinement)
        else:
            predict_from_maps(model, outputs, group, refinement=refinement)
    return list(samples)
