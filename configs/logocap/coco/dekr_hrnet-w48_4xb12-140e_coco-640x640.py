# DEKR, HRNet-W48, input 640x640: the peer of
# logocap_hrnet-w48_4xb12-140e_coco-640x640.py. The base's recipe with
# MMPose's DEKR W48 backbone, head width and input size.
_base_ = ['../_base_/dekr_coco-bottomup.py']

codec = dict(input_size=(640, 640), heatmap_size=(160, 160))

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth')),
    head=dict(in_channels=720, num_heatmap_filters=48, decoder=codec))

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
