# DEKR, HRNet-W32, CrowdPose trainval -> test, input 512x512: the peer of
# logocap_hrnet-w32_4xb12-140e_crowdpose-512x512.py. It inherits the COCO
# DEKR peer (../coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py: MMPose's
# DEKR recipe without the rescore net, with LOGO-CAP's data, augmentation,
# schedule and test settings) and changes what CrowdPose changes, exactly as
# its LOGO-CAP peer does: 14 keypoints, MMPose's CrowdPoseDataset and meta,
# the data paths and MMPose's CrowdPose evaluation (as in MMPose's own
# dekr/crowdpose configs). MMPose's 300-epoch CrowdPose schedule and its
# CrowdPose-trained rescore net are not used, so both peers train alike.
_base_ = [
    '../coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py',
    './_base_/crowdpose_data.py'
]

# the CrowdPose sets and evaluation of ./_base_/crowdpose_data.py
dataset_info = dict(_base_.crowdpose_info, _delete_=True)
default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

model = dict(head=dict(num_keypoints=14))

train_dataloader = dict(dataset=_base_.crowdpose_train_dataset)
val_dataloader = dict(dataset=_base_.crowdpose_test_dataset)
test_dataloader = val_dataloader
val_evaluator = _base_.crowdpose_evaluator
test_evaluator = val_evaluator
