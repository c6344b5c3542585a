# LOGO-CAP, HRNet-W32, CrowdPose trainval -> test, input 512x512: the COCO
# paper recipe (../coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py, which
# this file inherits) on the 14 CrowdPose keypoints. Only what CrowdPose
# changes is stated here: the keypoint count, the dataset class and its meta
# (MMPose's CrowdPose sigmas, flip pairs and skeleton), the data paths and
# MMPose's CrowdPose evaluation (CocoMetric with the crowd-index breakdown,
# AP(E/M/H), and no areas, as MMPose's DEKR CrowdPose configs). The paper
# reports no CrowdPose result; the schedule is the COCO one.
#
# Matched DEKR peer: dekr_hrnet-w32_4xb12-140e_crowdpose-512x512.py.
#
# Data in MMPose's layout (see MMPose's dataset docs for the conversion):
#   data/crowdpose/annotations/mmpose_crowdpose_{trainval,test}.json
#   data/crowdpose/images/
_base_ = [
    '../coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py',
    './_base_/crowdpose_data.py'
]

# the CrowdPose sets and evaluation of ./_base_/crowdpose_data.py
dataset_info = dict(_base_.crowdpose_info, _delete_=True)
default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

model = dict(
    head=dict(
        num_keypoints=14,
        # the OKS sigmas (KEM grid scales, OKS targets) of CrowdPose
        metainfo=dict(from_file='configs/_base_/datasets/crowdpose.py')))

train_dataloader = dict(dataset=_base_.crowdpose_train_dataset)
val_dataloader = dict(dataset=_base_.crowdpose_test_dataset)
test_dataloader = val_dataloader
val_evaluator = _base_.crowdpose_evaluator
test_evaluator = val_evaluator
