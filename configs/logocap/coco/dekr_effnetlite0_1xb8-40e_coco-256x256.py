# DEKR, CPU-sized: the peer of logocap_effnetlite0_1xb8-40e_coco-256x256.py
# (timm's EfficientNet-Lite0 with offline ImageNet weights,
# FeatureMapProcessor concat neck, input 256x256, same data, augmentation,
# schedule and test settings); MMPose's DEKR head and SPR codec, rescore net
# removed.
_base_ = ['../_base_/dekr_coco-bottomup.py']

custom_imports = dict(imports=['logocap_mmpose'], allow_failed_imports=False)

train_cfg = dict(max_epochs=40, val_interval=10)
param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=50, start_factor=0.01,
        by_epoch=False),
    dict(
        type='MultiStepLR',
        begin=0,
        end=40,
        milestones=[26, 34],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(
        type='CheckpointHook',
        interval=10,
        max_keep_ckpts=2,
        save_best='coco/AP',
        rule='greater'))
log_processor = dict(window_size=5)

codec = dict(input_size=(256, 256), heatmap_size=(64, 64))

model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.TIMMBackbone',  # as its LOGO-CAP peer
        model_name='tf_efficientnet_lite0',
        features_only=True,
        out_indices=(1, 2, 3, 4),
        bn_momentum=0.01,
        init_cfg=dict(
            type='TimmOfflinePretrained', checkpoint='tf_efficientnet_lite0')),
    neck=dict(type='FeatureMapProcessor', concat=True),
    head=dict(in_channels=496, decoder=codec))

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

train_dataloader = dict(
    batch_size=8, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=1, dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
