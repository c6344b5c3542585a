# CrowdPose data and evaluation for a config that inherits a COCO config:
# MMPose's CrowdPose dataset (trainval -> test) with its meta given inline,
# and MMPose's CrowdPose evaluation (CocoMetric over the crowd-index bins,
# AP(E/M/H), no areas, as in MMPose's DEKR CrowdPose configs).
#
# A derived config lists this file after its COCO config and puts the
# `crowdpose_*` values in place (MMEngine merges no key that two bases
# share). The meta is read apart (see crowdpose_meta.py).
# (Config is the one import MMEngine allows in a config of this style)
from mmengine.config import Config  # noqa: E402

crowdpose_info = Config.fromfile(
    '{{ fileDirname }}/crowdpose_meta.py').dataset_info.to_dict()
del Config

crowdpose_root = 'data/crowdpose/'
crowdpose_test_ann = 'annotations/mmpose_crowdpose_test.json'
# `_delete_`: replace COCO's meta instead of merging into it (a merge would
# keep COCO's keypoints 14-16 and its longer skeleton)
crowdpose_train_dataset = dict(
    type='LOGOCAPCrowdPoseDataset',  # names the fix for a bad root
    data_root=crowdpose_root,
    ann_file='annotations/mmpose_crowdpose_trainval.json',
    data_prefix=dict(img='images/'),
    metainfo=dict(crowdpose_info, _delete_=True))
crowdpose_test_dataset = dict(
    crowdpose_train_dataset, ann_file=crowdpose_test_ann)
crowdpose_evaluator = dict(
    ann_file=crowdpose_root + crowdpose_test_ann,
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
