# LOGO-CAP, HRNet-W48, COCO train2017 -> val2017, input 640x640 (paper recipe).
# Reported (COCO val2017, single scale, flip): AP 72.2 / AP50 88.9 /
# AP75 78.9 / APM 68.1 / APL 78.9.
# Same recipe as the W32 config this file inherits; only the backbone width,
# the input / heatmap size and the heatmap branch width (48) differ.
# Matched DEKR peer: dekr_hrnet-w48_4xb12-140e_coco-640x640.py.
_base_ = ['./logocap_hrnet-w32_4xb12-140e_coco-512x512.py']

# codec settings
codec = dict(
    type='LOGOCAPLabel',
    input_size=(640, 640),
    heatmap_size=(160, 160),
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
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth'),
    ),
    head=dict(in_channels=720, heatmap_channels=48, decoder=codec))

# pipelines (rebuilt: they embed the codec)
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

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
