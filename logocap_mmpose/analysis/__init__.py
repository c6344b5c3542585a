"""Everything that measures or analyses a LOGO-CAP model, beside the
method; the scripts under ``tools/`` are thin command lines over it.

Shared by every tool, by concern:

- ``inputs``: configs, data roots, models, test batches and the one
  test-config override (:func:`test_options`);
- ``timing``: the one timing loop (:func:`median_seconds` under
  :func:`time_test_step`) and its exported-model forms;
- ``report``: the one markdown table and report writer.

One module per tool, each importing only these and the method:
``benchmark`` (inference time and stage breakdown), ``flops``, ``compare``
(LOGO-CAP beside DEKR), ``crowd`` (time against people per image),
``memory`` (peak memory), ``fit`` (the fit check), ``video``,
``upper_bound`` (score and oracle ceilings, score / OKS correlation) and
``kem_kam`` (drawings of the KEMs and KAMs). Nothing in the method
(``models``, ``codecs``, ``datasets``, ``engine``, ``apis``) or in
``deploy`` imports this package (``tests/test_layering.py``).
"""
from .inputs import (COCO_LAYOUT, add_config_arguments, add_device_arguments,
                     add_timing_arguments, build_model, comparison_parser,
                     config_file, count_params, data_root_options,
                     is_labelled_person, is_logocap, labelled_image_ids,
                     load_config, missing_data_root, overridden,
                     parse_tool_args, prepare_batches, set_test_options,
                     short_name, test_options, tool_parser, val_image_paths,
                     write_coco_subset)
from .report import (Column, markdown_table, proposals_word,
                     time_ratio_sentence, workload_note, write_report)
from .timing import (Stopwatch, Timing, count_workload, median_seconds,
                     synchronize, time_end_to_end, time_one_graph,
                     time_onnxruntime, time_test_step)

__all__ = [
    'COCO_LAYOUT', 'add_config_arguments', 'add_device_arguments',
    'add_timing_arguments', 'build_model', 'comparison_parser', 'config_file',
    'count_params', 'data_root_options', 'is_labelled_person', 'is_logocap',
    'labelled_image_ids', 'load_config', 'missing_data_root', 'overridden',
    'parse_tool_args', 'prepare_batches', 'set_test_options', 'short_name',
    'test_options', 'tool_parser', 'val_image_paths', 'write_coco_subset',
    'Column', 'markdown_table', 'proposals_word', 'time_ratio_sentence',
    'workload_note', 'write_report', 'Stopwatch', 'Timing', 'count_workload',
    'median_seconds', 'synchronize', 'time_end_to_end', 'time_one_graph',
    'time_onnxruntime', 'time_test_step'
]
