# MMPose's packaged CrowdPose dataset meta (14 keypoints, their OKS sigmas,
# flip pairs and skeleton), read by the CrowdPose configs next to this folder
# with Config.fromfile. Not a runnable config.
#
# Why a file of its own: the CrowdPose configs inherit the COCO configs,
# whose bases already define `dataset_info` (COCO's), and MMEngine refuses
# the same key from two bases; so the CrowdPose meta is loaded here, apart,
# and replaces COCO's in the configs that read it.
_base_ = ['mmpose::_base_/datasets/crowdpose.py']
