"""What the tools under ``tools/`` compute, as functions: inference timing
and stage breakdown (``benchmark``), FLOPs with the refinement (``flops``),
the LOGO-CAP / DEKR comparison (``compare``). The tools are thin command
lines over them."""
