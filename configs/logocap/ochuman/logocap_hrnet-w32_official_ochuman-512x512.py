# LOGO-CAP HRNet-W32 with the authors' released (COCO-trained) weights,
# tested on OCHuman as the authors' code computes: val split as the val set,
# test split as the test set. Paper: OCHuman AP val 39.0 / test 38.1.
#   python tools/convert_official_checkpoint.py \
#       logocap-hrnet-w32-coco.pth.tar logocap_hrnet-w32_official_coco.pth
#   mim test mmpose <this config> -C logocap_hrnet-w32_official_coco.pth
_base_ = [
    '../coco/logocap_hrnet-w32_official_coco-512x512.py',
    './_base_/ochuman_testing.py'
]

# the OCHuman val and test sets of ./_base_/ochuman_testing.py
val_dataloader = dict(dataset=_base_.ochuman_val_dataset)
test_dataloader = dict(dataset=_base_.ochuman_test_dataset)
val_evaluator = _base_.ochuman_val_evaluator
test_evaluator = _base_.ochuman_test_evaluator
