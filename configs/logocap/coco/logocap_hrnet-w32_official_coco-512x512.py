# LOGO-CAP HRNet-W32 with the authors' released weights, tested as the
# authors' code computes (COCO val2017, single scale, flip). Paper: AP 69.6.
#
# Weights: convert the authors' logocap-hrnet-w32-coco.pth.tar with
#   python tools/convert_official_checkpoint.py \
#       logocap-hrnet-w32-coco.pth.tar logocap_hrnet-w32_official_coco.pth
#   mim test mmpose <this config> -C logocap_hrnet-w32_official_coco.pth
#
# Same model as the paper config this file inherits; only inference differs,
# reproducing the authors' conventions (their code puts stride-4 cell u at
# input pixel 4u but decodes on the 4x upsampled maps):
# - codec decode_on_input: centre NMS on the 4x upsampled centre map (border
#   peaks kept), initial poses = centre pixel + 4 * displacement of its cell;
# - head kem_cfg.sampling='authors': local KEMs read the embedding at p / 4 and
#   global KEMs the upsampled heatmaps, with the authors' border rules;
# - head adaptation_cfg.impl='conv': the authors' grouped convolution;
# - test_cfg nms_order='proposal': the authors' pose NMS order;
# - LOGOCAPTestResize: the authors' test resize (centre and canvas rounding).
_base_ = ['./logocap_hrnet-w32_4xb12-140e_coco-512x512.py']

model = dict(
    backbone=dict(init_cfg=None),  # all weights come from the checkpoint
    head=dict(
        kem_cfg=dict(sampling='authors'),
        adaptation_cfg=dict(impl='conv'),
        decoder=dict(decode_on_input=True)),
    test_cfg=dict(nms_order='proposal'))

val_pipeline = [
    dict(type='LOGOCAPLoadImage'),
    dict(type='LOGOCAPTestResize', input_size=512, size_factor=64),
    dict(type='PackPoseInputs', meta_keys={{_base_.val_meta_keys}})
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
