# The DEKR peers of the LOGO-CAP COCO configs, for side-by-side comparison
# (tools/compare_with_dekr.py, tools/benchmark_inference.py). This file is
# the HRNet-W32, 512x512 peer; the other peers change the backbone and the
# input size.
#
# MMPose's DEKR recipe (inherited through mmpose::) with what differs from
# LOGO-CAP's recipe aligned, so the comparison is fair:
# - rescore net removed (LOGO-CAP has none; its weights are COCO-trained and
#   downloaded), as in the paper's "DEKR, no rescoring" rows;
# - same data: 12 images per GPU, the same augmentation (uniform scale
#   U(0.75, 1.5), rotation +-30, shift 0.2, flip 0.5);
# - same schedule: Adam 1e-3, 140 epochs, x0.1 at 90/120, no warm-up;
# - same test input: BottomupResize(size_factor=64), flip test on.
# Backbone (ImageNet HRNet) and neck are DEKR's, identical to LOGO-CAP's.
# the COCO dataset meta (`dataset_info`) comes from MMPose's packaged
# base config, so no file path depends on the working directory
_base_ = [
    'mmpose::body_2d_keypoint/dekr/coco/'
    'dekr_hrnet-w32_8xb10-140e_coco-512x512.py',
    'mmpose::_base_/datasets/coco.py'
]

custom_imports = dict(imports=['logocap_mmpose'], allow_failed_imports=False)
# as LOGO-CAP: generators reseeded per epoch (exact resume; engine/hooks.py)
custom_hooks = [dict(type='SyncBuffersHook'), dict(type='EpochSeedHook')]

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=140,
        milestones=[90, 120],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=48)

codec = dict(
    type='SPR',
    input_size=(512, 512),
    heatmap_size=(128, 128),
    sigma=(4, 2),
    minimal_diagonal_length=32**0.5,
    generate_keypoint_heatmaps=True,
    decode_max_instances=30)

model = dict(
    head=dict(decoder=codec, rescore_cfg=None),
    test_cfg=dict(flip_test=True))
find_unused_parameters = False

train_pipeline = [
    dict(type='LOGOCAPLoadImage'),  # as its LOGO-CAP peer
    dict(
        type='LOGOCAPRandomAffine',  # the same augmentation as its peer
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
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape',
                   'img_shape', 'input_size', 'input_center', 'input_scale',
                   'flip', 'flip_direction', 'flip_indices', 'raw_ann_info',
                   'skeleton_links'))
]

# metainfo given inline: CocoDataset's own meta path is relative to an
# MMPose checkout and warns when read from anywhere else
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    dataset=dict(
        type='LOGOCAPCocoDataset',  # as its peer's
        pipeline=train_pipeline,
        metainfo={{_base_.dataset_info}}))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        type='LOGOCAPCocoDataset',
        pipeline=val_pipeline,
        metainfo={{_base_.dataset_info}}))
test_dataloader = val_dataloader
