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

# the base's pipelines with this codec's changes (they embed a copy of it)
train_pipeline = [
    dict(step, encoder=dict(step['encoder'], **codec)) if 'encoder' in step
    else dict(step, input_size=codec['input_size']) if 'input_size' in step
    else step for step in _base_.train_pipeline
]
val_pipeline = [
    dict(step, input_size=codec['input_size']) if 'input_size' in step else
    step for step in _base_.val_pipeline
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
