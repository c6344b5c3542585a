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
_base_ = ['../_base_/logocap_coco-bottomup.py']

# runtime and learning policy: 140 epochs, lr x0.1 at 90 and 120
train_cfg = dict(max_epochs=140, val_interval=10)
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

# model settings: ImageNet-pretrained HRNet-W32, 480 channels at stride 4
model = dict(
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
    head=dict(in_channels=480))

train_dataloader = dict(batch_size=12)
