# LOGO-CAP, HRNet-W48, COCO train2017 -> val2017, input 640x640 (paper recipe).
# Reported (COCO val2017, single scale, flip): AP 72.2 / AP50 88.9 /
# AP75 78.9 / APM 68.1 / APL 78.9.
# Same recipe as the W32 config this file inherits; only the backbone width,
# the input / heatmap size and the heatmap branch width (48) differ.
# Matched DEKR peer: dekr_hrnet-w48_4xb12-140e_coco-640x640.py.
_base_ = ['./logocap_hrnet-w32_4xb12-140e_coco-512x512.py']

codec = dict(
    type='LOGOCAPLabel', input_size=(640, 640), heatmap_size=(160, 160))

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
    head=dict(
        in_channels=720, branch_cfg=dict(heatmap_channels=48),
        decoder=codec))

# pipelines: the base's with the 640x640 codec (they embed it)
train_pipeline = [
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
    dict(type='PackPoseInputs', meta_keys={{_base_.val_meta_keys}})
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
