# DEKR, HRNet-W32, CrowdPose trainval -> test, input 512x512: the peer of
# logocap_hrnet-w32_4xb12-140e_crowdpose-512x512.py. It inherits the COCO
# DEKR peer (../coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py: MMPose's
# DEKR recipe without the rescore net, with LOGO-CAP's data, augmentation,
# schedule and test settings) and changes what CrowdPose changes, exactly as
# its LOGO-CAP peer does: 14 keypoints, MMPose's CrowdPoseDataset and meta,
# the data paths and MMPose's CrowdPose evaluation (as in MMPose's own
# dekr/crowdpose configs). MMPose's 300-epoch CrowdPose schedule and its
# CrowdPose-trained rescore net are not used, so both peers train alike.
_base_ = ['../coco/dekr_hrnet-w32_4xb12-140e_coco-512x512.py']

# the CrowdPose meta, loaded apart (see _base_/crowdpose_meta.py) and given
# inline to every dataset
# (Config is the one import MMEngine allows in a config of this style)
from mmengine.config import Config  # noqa: E402

crowdpose_info = Config.fromfile(
    '{{ fileDirname }}/_base_/crowdpose_meta.py').dataset_info.to_dict()
del Config
# `_delete_`: replace COCO's meta instead of merging into it
dataset_info = dict(crowdpose_info, _delete_=True)

default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

model = dict(head=dict(num_keypoints=14))

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
