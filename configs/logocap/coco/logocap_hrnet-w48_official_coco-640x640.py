# LOGO-CAP HRNet-W48 with the authors' released weights, tested as the
# authors' code computes (COCO val2017, single scale, flip). Paper: AP 72.2.
#
# Weights: convert the authors' logocap-hrnet-w48-coco.pth.tar with
#   python tools/convert_official_checkpoint.py \
#       logocap-hrnet-w48-coco.pth.tar logocap_hrnet-w48_official_coco.pth
#   mim test mmpose <this config> -C logocap_hrnet-w48_official_coco.pth
#
# The W48 paper config with the authors' inference conventions; see
# logocap_hrnet-w32_official_coco-512x512.py for what each option does.
_base_ = ['./logocap_hrnet-w48_4xb12-140e_coco-640x640.py']

model = dict(
    backbone=dict(init_cfg=None),  # all weights come from the checkpoint
    head=dict(
        kem_cfg=dict(sampling='authors'),
        adaptation_cfg=dict(impl='conv'),
        decoder=dict(decode_on_input=True)),
    test_cfg=dict(nms_order='proposal'))

val_pipeline = [
    dict(type='LOGOCAPLoadImage'),
    dict(type='LOGOCAPTestResize', input_size=640, size_factor=64),
    dict(type='PackPoseInputs', meta_keys={{_base_.val_meta_keys}})
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
