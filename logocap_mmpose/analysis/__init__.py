"""What the tools under ``tools/`` compute, as functions: inference timing
and stage breakdown (``benchmark``), FLOPs with the refinement (``flops``),
the LOGO-CAP / DEKR comparison (``compare``), time against people per image
beside top-down (``crowd``). The tools are thin command lines over them."""
