"""Running an exported LOGO-CAP model without the training stack: numpy,
OpenCV and onnxruntime only (no torch, MMCV, MMEngine or MMPose).

``PoseRunner(path)(image)`` reads an image, resizes and pads it as the
config's test pipeline does (``resize.py``), runs the one graph
``logocap_mmpose.deploy.export_one_graph`` wrote (``graph.py``) and maps
the poses back to image pixels, in onnxruntime or (optional, ``runtime=
'openvino'``) OpenVINO. ``python -m logocap_runtime GRAPH IMAGE``
prints them as JSON.
"""
from .graph import (INPUT_NAME, META_KEY, OUTPUT_NAMES, RUNTIMES, PoseGraph,
                    PoseRunner, graph_metadata, make_session, normalise,
                    read_image, unpack_poses)
from .resize import (RESIZES, authors_test_size, authors_test_warp,
                     expand_warp, resize_image, canvas_warp, to_image_pixels)

__all__ = [
    'INPUT_NAME', 'META_KEY', 'OUTPUT_NAMES', 'RUNTIMES', 'PoseGraph',
    'PoseRunner', 'graph_metadata',
    'make_session', 'normalise', 'read_image', 'unpack_poses', 'RESIZES',
    'authors_test_size', 'authors_test_warp', 'expand_warp', 'resize_image',
    'canvas_warp', 'to_image_pixels'
]
