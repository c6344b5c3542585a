# DEKR, HRNet-W32, input 512x512: the peer of
# logocap_hrnet-w32_4xb12-140e_coco-512x512.py (same data, augmentation,
# schedule and test settings; see the base for what was aligned).
_base_ = ['../_base_/dekr_coco-bottomup.py']
