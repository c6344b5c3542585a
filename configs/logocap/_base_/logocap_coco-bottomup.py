# What every LOGO-CAP COCO config shares: the paper's head, codec, test
# settings, augmentation, data and evaluation at the 512x512 input of the
# HRNet-W32 recipe. A config that inherits this file states only what differs
# (backbone, schedule, input size); one with another input size states its
# codec changes and rebuilds the two pipelines, which embed the codec, from
# this file's (MMEngine configs cannot edit a list item of their base). Not a
# runnable config by itself: no backbone.
#
# The COCO dataset meta (`dataset_info`) comes from MMPose's packaged base
# config, so no file path depends on the working directory.
_base_ = [
    'mmpose::_base_/default_runtime.py',
    'mmpose::_base_/datasets/coco.py'
]

custom_imports = dict(imports=['logocap_mmpose'], allow_failed_imports=False)

# optimizer (the authors: Adam, lr 1e-3, no weight decay)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))
# MMPose's SyncBuffersHook; the generators reseeded per epoch so that a
# resumed run draws the augmentation of the uninterrupted one; a log line
# when the OKS gate stays shut (engine/hooks.py)
custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(type='EpochSeedHook'),
    dict(type='OKSGateMonitorHook', patience=50)
]

# codec: the LOGOCAPLabel defaults are the paper's (Gaussian sigma 2, centre
# sigma 4, 32^2 centre cut-off on the annotated area, offset radius 4,
# background weight 0.1, 30 proposals above centre score 0.01, 3x3 NMS)
codec = dict(
    type='LOGOCAPLabel', input_size=(512, 512), heatmap_size=(128, 128))

# model settings
model = dict(
    # MMPose's BottomupPoseEstimator, but a test batch of mixed image sizes
    # runs each size unpadded: the same poses as each image alone
    type='LOGOCAPPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    # every backbone level resized to stride 4 and concatenated
    neck=dict(type='FeatureMapProcessor', concat=True),
    head=dict(
        type='LOGOCAPHead',
        num_keypoints=17,
        metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
        branch_cfg=dict(
            heatmap_channels=32, offset_channels=256, embedding_channels=64),
        kem_cfg=dict(
            local_size=11,  # S: local KEM grid (KAM) side
            local_extent=5.0,  # half range of the unscaled grid, px
            global_size=97,  # a: global KEM window side, input px
            sampling='centred'),
        cmp_cfg=dict(
            channels=(512, 256, 128),
            norm_cfg=dict(type='AttentiveNorm', num_mixtures=20)),
        adaptation_cfg=dict(impl='fft', top2_lambda=0.75),
        kam_loss=dict(type='OKSKernelLoss', loss_weight=0.01),
        decoder=codec),
    # read by LOGOCAPHead.loss: proposals refined per training image and
    # the OKS gate of the refinement losses
    train_cfg=dict(num_proposals=30, oks_threshold=0.5),
    test_cfg=dict(
        flip_test=True,
        channels_last=True,  # the network on NHWC memory: faster on CPUs
        mode='full',  # 'full' | 'baseline' | 'kems_only' | 'kams_only'
        max_proposals=30,
        nms_dist_thr=0.05,
        nms_joints_thr=8,
        max_num_people=30))

# base dataset settings
# MMPose's CocoDataset that names the fix when data_root holds no COCO
dataset_type = 'LOGOCAPCocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'
val_meta_keys = ('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape',
                 'img_shape', 'input_size', 'input_center', 'input_scale',
                 'flip', 'flip_direction', 'flip_indices', 'raw_ann_info',
                 'skeleton_links')

# pipelines: the paper's augmentation (crop side U(0.75, 1.5) x the short
# side, rotation U(-30, 30) deg, crop centre shifted by integer px up to 0.2
# of the crop side, horizontal flip). LOGOCAPRandomAffine is MMPose's
# BottomupRandomAffine with the authors' shift (MMPose's is relative to the
# image side; see datasets/augmentation.py). LOGOCAPGetHeatmapMask masks
# crowd regions (RLE), which MMPose's BottomupGetHeatmapMask skips.
train_pipeline = [
    # MMPose's LoadImage with clear errors (empty or undecodable files,
    # keypoint counts) and grayscale / BGRA / 0-1 float arrays
    dict(type='LOGOCAPLoadImage'),
    dict(
        type='LOGOCAPRandomAffine',
        input_size=codec['input_size'],
        shift_factor=0.2,
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='LOGOCAPGetHeatmapMask'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LOGOCAPLoadImage'),
    dict(
        type='BottomupResize',
        input_size=codec['input_size'],
        size_factor=64,
        resize_mode='expand'),
    dict(type='PackPoseInputs', meta_keys=val_meta_keys)
]

# data loaders
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        # given inline: CocoDataset's own meta path is relative to an
        # MMPose checkout and warns when read from anywhere else
        metainfo={{_base_.dataset_info}},
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        metainfo={{_base_.dataset_info}},
        pipeline=val_pipeline,
    ))
test_dataloader = val_dataloader

# evaluators
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    nms_mode='none',
    score_mode='keypoint',
)
test_evaluator = val_evaluator
