# DEKR HRNet-W48, trained on COCO with
# ../coco/dekr_hrnet-w48_4xb12-140e_coco-640x640.py
# (this config trains exactly like it), evaluated on OCHuman: val split as
# the val set, test split as the test set. OCHuman is a testing-only
# benchmark of heavily occluded people with COCO-17 keypoints.
#   tools/test.py <this config> <COCO-trained checkpoint>  -> OCHuman test
# Peer of logocap_hrnet-w48_4xb12-140e_ochuman-640x640.py
# (same training and evaluation protocol).
_base_ = [
    '../coco/dekr_hrnet-w48_4xb12-140e_coco-640x640.py',
    './_base_/ochuman_testing.py'
]

# the OCHuman val and test sets of ./_base_/ochuman_testing.py
val_dataloader = dict(dataset=_base_.ochuman_val_dataset)
test_dataloader = dict(dataset=_base_.ochuman_test_dataset)
val_evaluator = _base_.ochuman_val_evaluator
test_evaluator = _base_.ochuman_test_evaluator
