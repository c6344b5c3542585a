# LOGO-CAP, HRNet-W32, COCO train2017 -> val2017, input 512x512 (paper recipe).
# Xue et al., "Learning Local-Global Contextual Adaptation for Multi-Person
# Pose Estimation", CVPR 2022. Reported (COCO val2017, single scale, flip):
# AP 69.6 / AP50 87.5 / AP75 75.9 / APM 64.1 / APL 78.0.
#
# Recipe of the reference implementation: Adam, lr 1e-3, no weight decay,
# 140 epochs, lr x0.1 at epochs 90 and 120, 12 images per GPU, random
# scale U(0.75, 1.5) of the short side, rotation U(-30, 30) deg, shift up to
# 0.2 of the image, horizontal flip p=0.5, ImageNet-pretrained HRNet-W32.
# The number of GPUs is not stated by the authors; "4xb12" (48 images per
# iteration) is this config's assumption (see auto_scale_lr).
#
# The matched DEKR peer (same backbone, input, data, schedule) is
# dekr_hrnet-w32_4xb12-140e_coco-512x512.py next to this file.
# the COCO dataset meta (`dataset_info`) comes from MMPose's packaged
# base config, so no file path depends on the working directory
_base_ = [
    'mmpose::_base_/default_runtime.py',
    'mmpose::_base_/datasets/coco.py'
]

custom_imports = dict(imports=['logocap_mmpose'], allow_failed_imports=False)

# runtime
train_cfg = dict(max_epochs=140, val_interval=10)

# optimizer
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))

# learning policy (no warm-up in the reference recipe)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=140,
        milestones=[90, 120],
        gamma=0.1,
        by_epoch=True)
]

# automatically scaling LR based on the actual training batch size
auto_scale_lr = dict(base_batch_size=48)

# hooks
default_hooks = dict(checkpoint=dict(save_best='coco/AP', rule='greater'))

# codec settings
codec = dict(
    type='LOGOCAPLabel',
    input_size=(512, 512),
    heatmap_size=(128, 128),
    sigma=2.0,
    center_sigma=4.0,
    min_center_area=32**2,
    offset_radius=4,
    background_weight=0.1,
    decode_max_instances=30,
    decode_thr=0.01,
    decode_nms_kernel=3)

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
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256),
                multiscale_output=True)),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth'),
    ),
    neck=dict(type='FeatureMapProcessor', concat=True),
    head=dict(
        type='LOGOCAPHead',
        in_channels=480,
        num_keypoints=17,
        keypoint_sigmas=None,
        metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
        heatmap_channels=32,
        offset_channels=256,
        embedding_channels=64,
        cmp_channels=(512, 256, 128),
        num_mixtures=20,
        local_kem_size=11,
        global_kem_size=97,
        num_proposals=30,
        decoder=codec),
    test_cfg=dict(
        flip_test=True,
        mode='full',  # 'full' | 'baseline' | 'kems_only' | 'kams_only'
        max_proposals=30,
        nms_dist_thr=0.05,
        nms_joints_thr=8,
        max_num_people=30))

# base dataset settings
dataset_type = 'CocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'

# pipelines
train_pipeline = [
    dict(type='LOGOCAPLoadImage'),
    dict(
        type='BottomupRandomAffine',
        input_size=codec['input_size'],
        shift_factor=0.2,
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupGetHeatmapMask'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LOGOCAPLoadImage'),
    dict(
        type='BottomupResize',
        input_size=codec['input_size'],
        size_factor=64,
        resize_mode='expand'),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape',
                   'img_shape', 'input_size', 'input_center', 'input_scale',
                   'flip', 'flip_direction', 'flip_indices', 'raw_ann_info',
                   'skeleton_links'))
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
