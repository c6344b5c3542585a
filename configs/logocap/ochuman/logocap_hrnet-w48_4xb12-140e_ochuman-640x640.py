# LOGO-CAP HRNet-W48, trained on COCO with
# ../coco/logocap_hrnet-w48_4xb12-140e_coco-640x640.py
# (this config trains exactly like it), evaluated on OCHuman: val split as
# the val set, test split as the test set. OCHuman is a testing-only
# benchmark of heavily occluded people with COCO-17 keypoints.
#   tools/test.py <this config> <COCO-trained checkpoint>  -> OCHuman test
# Paper (LOGO-CAP, COCO-trained): OCHuman AP W48 val 41.2 / test 40.4.
_base_ = ['../coco/logocap_hrnet-w48_4xb12-140e_coco-640x640.py']

ochuman_root = 'data/ochuman/'
ochuman_val = 'annotations/ochuman_coco_format_val_range_0.00_1.00.json'
ochuman_test = 'annotations/ochuman_coco_format_test_range_0.00_1.00.json'
# OCHuman's dataset meta given inline, as the COCO configs give COCO's:
# MMPose's OCHumanDataset names its meta file relative to an MMPose checkout
# ('configs/_base_/datasets/ochuman.py') and warns when run from anywhere
# else. MMPose's OCHuman meta is COCO's (the same 17 keypoints, skeleton,
# joint weights and sigmas) under the name 'ochuman', so it is the inherited
# COCO `dataset_info` renamed, without COCO's paper_info.
ochuman_metainfo = dict(_base_.dataset_info, dataset_name='ochuman')
ochuman_metainfo.pop('paper_info', None)

val_dataloader = dict(
    dataset=dict(
        type='LOGOCAPOCHumanDataset',
        data_root=ochuman_root,
        ann_file=ochuman_val,
        data_prefix=dict(img='images/'),
        metainfo=ochuman_metainfo))
test_dataloader = dict(
    dataset=dict(
        type='LOGOCAPOCHumanDataset',
        data_root=ochuman_root,
        ann_file=ochuman_test,
        data_prefix=dict(img='images/'),
        metainfo=ochuman_metainfo))

val_evaluator = dict(ann_file=ochuman_root + ochuman_val)
test_evaluator = dict(ann_file=ochuman_root + ochuman_test)
