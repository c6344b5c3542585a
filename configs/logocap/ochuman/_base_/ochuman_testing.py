# OCHuman testing for a COCO-trained config: the val split as the val set,
# the test split as the test set. OCHuman is a testing-only benchmark of
# heavily occluded people with COCO-17 keypoints.
#
# A derived config lists this file after its COCO config and puts the
# `ochuman_*` values in place (MMEngine merges no key that two bases share).
# OCHuman's dataset meta is given inline, as the COCO configs give COCO's:
# MMPose's OCHumanDataset names its meta file relative to an MMPose checkout
# and warns when run from anywhere else. MMPose's OCHuman meta is COCO's
# (the same 17 keypoints, skeleton, joint weights and sigmas) under the name
# 'ochuman', so the sets below rename the inline COCO meta they merge into.
ochuman_root = 'data/ochuman/'
ochuman_val_ann = 'annotations/ochuman_coco_format_val_range_0.00_1.00.json'
ochuman_test_ann = 'annotations/ochuman_coco_format_test_range_0.00_1.00.json'

ochuman_val_dataset = dict(
    type='LOGOCAPOCHumanDataset',
    data_root=ochuman_root,
    ann_file=ochuman_val_ann,
    data_prefix=dict(img='images/'),
    metainfo=dict(dataset_name='ochuman'))
ochuman_test_dataset = dict(ochuman_val_dataset, ann_file=ochuman_test_ann)
ochuman_val_evaluator = dict(ann_file=ochuman_root + ochuman_val_ann)
ochuman_test_evaluator = dict(ann_file=ochuman_root + ochuman_test_ann)
