# The CPU config with the paper's message passing widths (embedding 64, CMP
# 512/256/128) instead of its lighter default (embedding 32, CMP
# 128/64/64). For the width comparison of docs/measurements.md ("Inference
# speed", with the FLOPs of both) and for checkpoints trained before the CPU
# config changed its widths.
_base_ = ['./logocap_effnetlite0_1xb8-40e_coco-256x256.py']

model = dict(
    head=dict(
        branch_cfg=dict(embedding_channels=64),
        cmp_cfg=dict(channels=(512, 256, 128))))
