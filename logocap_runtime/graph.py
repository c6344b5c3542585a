"""An exported LOGO-CAP graph (images in, poses out), run by onnxruntime,
and the image-level runner around it: numpy, OpenCV and onnxruntime only.

The graph (written by ``logocap_mmpose.deploy.export_one_graph``) carries
its own description in the ONNX metadata (:data:`META_KEY`, JSON):

- ``settings``: the test settings fixed in it (flip, mode, proposals,
  pose NMS);
- ``preprocess``: the normalisation inside it (it then takes raw BGR
  0..255), or None (it takes normalised images);
- ``resize``: the config's test resize (``resize.canvas_warp``);
- ``size_divisor``: the graph takes any height and width that are multiples
  of it; ``num_keypoints`` K; ``max_people`` M, the rows per image.

Its outputs, for a (B, 3, H, W) batch: ``keypoints`` (B, M, K, 2) input
pixels, ``keypoint_scores`` (B, M, K), ``pose_scores`` (B, M) and
``num_people`` (B,): the first ``num_people[b]`` rows are image ``b``'s
poses, best first.
"""
import json
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .resize import resize_image, to_image_pixels

META_KEY = 'logocap_one_graph'
INPUT_NAME = 'inputs'
OUTPUT_NAMES = ('keypoints', 'keypoint_scores', 'pose_scores', 'num_people',
                'pose_quality')
MISSING_ORT = ('onnxruntime is not installed, and running an exported '
               'LOGO-CAP graph needs it: pip install onnxruntime')


def make_session(path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None, options: Optional[dict] = None):
    """An onnxruntime ``InferenceSession``.

    Args:
        path (str): the ``.onnx`` file.
        providers (Sequence[str], optional): execution providers (CPU).
        threads (int, optional): intra-op threads (onnxruntime's default
            when None).
        options (dict, optional): further ``SessionOptions`` attributes,
            e.g. ``graph_optimization_level`` (an ``ort.GraphOptimization
            Level`` name such as ``'ORT_ENABLE_ALL'``) or
            ``execution_mode``.

    Raises:
        ImportError: onnxruntime is not installed (with the fix).
        FileNotFoundError: no such file.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError(MISSING_ORT, name='onnxruntime') from err
    import os
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no ONNX file at {path}')
    sess_options = ort.SessionOptions()
    if threads:
        sess_options.intra_op_num_threads = int(threads)
    for key, value in (options or {}).items():
        if key == 'graph_optimization_level' and isinstance(value, str):
            value = getattr(ort.GraphOptimizationLevel, value)
        elif key == 'execution_mode' and isinstance(value, str):
            value = getattr(ort.ExecutionMode, value)
        setattr(sess_options, key, value)
    return ort.InferenceSession(
        path, sess_options=sess_options,
        providers=list(providers or ['CPUExecutionProvider']))


#: the runtimes :class:`PoseGraph` runs a graph with
RUNTIMES = ('onnxruntime', 'openvino')


class _OpenVINOSession:
    """An OpenVINO CPU model behind onnxruntime's ``run`` and metadata
    calls (it reads the ONNX file itself)."""

    def __init__(self, path: str, threads: Optional[int],
                 precision: str = 'f32'):
        try:
            import openvino as ov
        except ImportError as err:
            raise ImportError(
                'openvino is not installed, and running an exported LOGO-CAP '
                'graph with runtime="openvino" needs it: pip install '
                'openvino', name='openvino') from err
        import os
        if not os.path.isfile(path):
            raise FileNotFoundError(f'no ONNX file at {path}')
        core = ov.Core()
        self.model = core.read_model(path)
        config = {'INFERENCE_PRECISION_HINT': precision}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        self.compiled = core.compile_model(self.model, 'CPU', config)
        self.request = self.compiled.create_infer_request()

    def metadata(self) -> Dict[str, str]:
        if not self.model.has_rt_info(['framework', META_KEY]):
            return {}
        return {META_KEY: self.model.get_rt_info(['framework',
                                                  META_KEY]).value}

    def run(self, names: Sequence[str], feeds: dict) -> list:
        out = self.request.infer(feeds)
        return [out[self.compiled.output(name)] for name in names]


def graph_metadata(meta: Dict[str, str], key: str, path: str,
                   what: str) -> dict:
    """The JSON settings an exported LOGO-CAP graph carries under ``key``
    of its custom metadata (ValueError naming ``path`` when it has none:
    not a LOGO-CAP ``what``)."""
    if key not in meta:
        raise ValueError(f'{path} is not a LOGO-CAP {what} (no {key!r} '
                         'metadata)')
    return json.loads(meta[key])


class PoseGraph:
    """An exported one graph: (B, 3, H, W) batch -> poses.

    Args:
        path (str): the ``.onnx`` file.
        providers, threads, options: see :func:`make_session` (onnxruntime;
            ``threads`` also for OpenVINO).
        runtime (str): ``'onnxruntime'`` or ``'openvino'`` (the optional
            ``openvino`` package, CPU plugin).
        precision (str): OpenVINO's inference precision: ``'f32'`` (the
            default here; the same poses as onnxruntime within float
            rounding) or ``'bf16'`` (faster on CPUs with bfloat16 units,
            and not the same poses: keypoints move at near-ties).

    Attributes:
        settings (dict), preprocess (dict | None), resize (dict | None),
        size_divisor (int), num_keypoints (int), max_people (int): the
        graph's metadata (module docstring).
    """

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None,
                 options: Optional[dict] = None,
                 runtime: str = 'onnxruntime',
                 precision: str = 'f32'):
        if runtime not in RUNTIMES:
            raise ValueError(f'runtime must be one of {RUNTIMES}, got '
                             f'{runtime!r}')
        self.runtime = runtime
        if runtime == 'openvino':
            self.session = _OpenVINOSession(path, threads, precision)
            meta = self.session.metadata()
        else:
            self.session = make_session(path, providers, threads, options)
            meta = self.session.get_modelmeta().custom_metadata_map
        info = graph_metadata(meta, META_KEY, path, 'one graph')
        self.settings = info['settings']
        self.preprocess = info['preprocess']
        self.resize = info.get('resize')
        self.size_divisor = int(info['size_divisor'])
        self.num_keypoints = int(info['num_keypoints'])
        self.max_people = int(info['max_people'])

    def check_shape(self, height: int, width: int) -> None:
        """Refuse an input size the graph cannot take (ValueError)."""
        d = self.size_divisor
        if height % d or width % d:
            raise ValueError(
                f'the one graph takes heights and widths that are multiples '
                f'of {d}, got {height}x{width}: resize and pad the image as '
                'the test pipeline does (logocap_runtime.resize_image)')

    def __call__(self, inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """(B, 3, H, W) float32 -> dict of the :data:`OUTPUT_NAMES`."""
        inputs = np.ascontiguousarray(inputs, np.float32)
        if inputs.ndim != 4 or inputs.shape[1] != 3:
            raise ValueError(f'expected a (B, 3, H, W) batch, got shape '
                             f'{inputs.shape}')
        self.check_shape(*inputs.shape[2:])
        outs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: inputs})
        return dict(zip(OUTPUT_NAMES, outs))


def unpack_poses(outputs: Dict[str, np.ndarray]) -> List[dict]:
    """The graph's outputs as one dict per image: ``keypoints`` (P, K, 2),
    ``keypoint_scores`` (P, K), ``pose_scores`` (P,) and ``pose_quality``
    (P,), the predicted OKS (0 from a model without a quality head), the P
    valid rows."""
    return [dict(keypoints=k[:n], keypoint_scores=s[:n], pose_scores=p[:n],
                 pose_quality=q[:n])
            for k, s, p, n, q in zip(outputs['keypoints'],
                                     outputs['keypoint_scores'],
                                     outputs['pose_scores'],
                                     outputs['num_people'],
                                     outputs['pose_quality'])]


def normalise(canvas: np.ndarray, preprocess: dict) -> np.ndarray:
    """(H, W, 3) BGR uint8 -> (3, H, W) float32, as MMPose's data
    preprocessor normalises (for a graph without the normalisation)."""
    x = canvas.astype(np.float32)
    if preprocess.get('bgr_to_rgb'):
        x = x[..., ::-1]
    x = (x - np.asarray(preprocess['mean'], np.float32)) / np.asarray(
        preprocess['std'], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class PoseRunner:
    """Image in, poses in image pixels out, with an exported one graph.

    Args:
        path (str): the ``.onnx`` file (exported with its test resize in
            the metadata).
        threads (int, optional): onnxruntime intra-op threads.
        preprocess (dict, optional): the normalisation, needed only for a
            graph that does not hold it (``mean``, ``std``, ``bgr_to_rgb``).
        providers, options: see :func:`make_session`.
        runtime (str): ``'onnxruntime'`` or ``'openvino'`` (f32).
    """

    def __init__(self, path: str, threads: Optional[int] = None,
                 preprocess: Optional[dict] = None,
                 providers: Optional[Sequence[str]] = None,
                 options: Optional[dict] = None,
                 runtime: str = 'onnxruntime'):
        self.graph = PoseGraph(path, providers, threads, options, runtime)
        if self.graph.resize is None:
            raise ValueError(f'{path} holds no test resize in its metadata: '
                             'export it with logocap_mmpose.deploy.'
                             'export_one_graph from a config')
        if self.graph.preprocess is None and preprocess is None:
            raise ValueError(
                f'{path} takes normalised images: pass preprocess=dict(mean, '
                'std, bgr_to_rgb), or export with --with-preprocess')
        self.preprocess = preprocess

    def __call__(self, image: Union[str, np.ndarray]) -> dict:
        """Poses of one image.

        Args:
            image (str | np.ndarray): a file path or an (h, w, 3) BGR uint8
                array (as ``cv2.imread`` reads it).

        Returns:
            dict: ``keypoints`` (P, K, 2) image pixels, ``keypoint_scores``
            (P, K), ``pose_scores`` (P,), best first; P may be 0.

        Raises:
            FileNotFoundError: a missing file. ValueError: a file that is no
            image, or an array of another shape.
        """
        image = read_image(image)
        canvas, meta = resize_image(image, self.graph.resize)
        if self.graph.preprocess is None:
            x = normalise(canvas, self.preprocess)
        else:
            x = np.ascontiguousarray(canvas.transpose(2, 0, 1), np.float32)
        (pose, ) = unpack_poses(self.graph(x[None]))
        pose['keypoints'] = to_image_pixels(
            pose['keypoints'], meta['input_size'], meta['input_center'],
            meta['input_scale'])
        return pose


def read_image(image: Union[str, np.ndarray]) -> np.ndarray:
    """A BGR uint8 (h, w, 3) image from a path or an array (clear errors)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'expected an (h, w, 3) uint8 BGR image, got '
                             f'{image.dtype} {image.shape}')
        return image
    import os

    import cv2
    if not os.path.isfile(image):
        raise FileNotFoundError(f'no image file at {image}')
    array = cv2.imread(image, cv2.IMREAD_COLOR)
    if array is None:
        raise ValueError(f'{image} could not be decoded as an image '
                         '(corrupt or not an image file)')
    return array
