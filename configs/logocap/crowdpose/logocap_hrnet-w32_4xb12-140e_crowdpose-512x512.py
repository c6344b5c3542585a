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
_base_ = ['../coco/logocap_hrnet-w32_4xb12-140e_coco-512x512.py']

# the CrowdPose meta, loaded apart (see _base_/crowdpose_meta.py) and given
# inline to every dataset, so no dataset looks for MMPose's checkout-relative
# meta file (which warns outside an MMPose checkout)
# (Config is the one import MMEngine allows in a config of this style)
from mmengine.config import Config  # noqa: E402

crowdpose_info = Config.fromfile(
    '{{ fileDirname }}/_base_/crowdpose_meta.py').dataset_info.to_dict()
del Config
# `_delete_`: replace COCO's meta instead of merging into it (a merge would
# keep COCO's keypoints 14-16 and its longer skeleton)
dataset_info = dict(crowdpose_info, _delete_=True)

default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

model = dict(
    head=dict(
        num_keypoints=14,
        # the OKS sigmas (KEM grid scales, OKS targets) of CrowdPose
        metainfo=dict(from_file='configs/_base_/datasets/crowdpose.py')))

dataset_type = 'LOGOCAPCrowdPoseDataset'  # names the fix for a bad root
data_root = 'data/crowdpose/'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mmpose_crowdpose_trainval.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(crowdpose_info, _delete_=True)))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mmpose_crowdpose_test.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(crowdpose_info, _delete_=True)))
test_dataloader = val_dataloader

# MMPose's CrowdPose evaluation: AP over the crowd-index bins, no areas
val_evaluator = dict(
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
test_evaluator = val_evaluator
