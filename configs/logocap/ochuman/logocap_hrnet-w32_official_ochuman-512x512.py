# LOGO-CAP HRNet-W32 with the authors' released (COCO-trained) weights,
# tested on OCHuman as the authors' code computes: val split as the val set,
# test split as the test set. Paper: OCHuman AP val 39.0 / test 38.1.
#   python tools/convert_official_checkpoint.py \
#       logocap-hrnet-w32-coco.pth.tar logocap_hrnet-w32_official_coco.pth
#   mim test mmpose <this config> -C logocap_hrnet-w32_official_coco.pth
_base_ = ['../coco/logocap_hrnet-w32_official_coco-512x512.py']

ochuman_root = 'data/ochuman/'
ochuman_val = 'annotations/ochuman_coco_format_val_range_0.00_1.00.json'
ochuman_test = 'annotations/ochuman_coco_format_test_range_0.00_1.00.json'

val_dataloader = dict(
    dataset=dict(
        type='OCHumanDataset',
        data_root=ochuman_root,
        ann_file=ochuman_val,
        data_prefix=dict(img='images/')))
test_dataloader = dict(
    dataset=dict(
        type='OCHumanDataset',
        data_root=ochuman_root,
        ann_file=ochuman_test,
        data_prefix=dict(img='images/')))

val_evaluator = dict(ann_file=ochuman_root + ochuman_val)
test_evaluator = dict(ann_file=ochuman_root + ochuman_test)
