"""hailo-qa split MODEL --out DIR [--cut NAMES] [--end-nodes NAMES] [--batch 1] [--shape NAME=DIMS] [--no-simplify]
[--no-int8-error] [--int8-range LO,HI]"""
from __future__ import annotations

HELP = "split a model into a device Stage 1 and a host Stage 2 (stage1.onnx, stage2.onnx, split_report.{json,md})"


from hailo_qa.commands.lint import parse_shape  # noqa: E402,F401  (shared option parser)
from hailo_qa.options import batch_size, shape_map, verify_count  # noqa: E402


def _names(value: str) -> list[str]:
    import argparse

    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected comma-separated tensor or node "
                                         "names, e.g. /model/conv5/Relu_output_0 (omit the option for an automatic "
                                         "split)")
    return names


def _value_range(value: str) -> tuple[float, float]:
    import argparse
    import math

    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected LO,HI with LO < HI, e.g. 0,255")
    return lo, hi


def add_arguments(p) -> None:
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cut", type=_names, default=[], metavar="NAMES",
                   help="comma-separated Stage-1 output tensors (default: automatic)")
    p.add_argument("--end-nodes", type=_names, default=[], metavar="NAMES",
                   help="comma-separated Stage-1 end nodes (their outputs become the cut)")
    p.add_argument("--batch", type=batch_size, default=1, help="static size for a dynamic batch (default 1)")
    p.add_argument("--shape", type=parse_shape, action="append", default=[], metavar="NAME=D0,D1,..",
                   help="size of an input's dynamic dims, e.g. x=1,3,48,320 (repeatable; static dims must match)")
    p.add_argument("--reshape", action="store_true",
                   help="let --shape change static dims too (the proof runs the original at the new size)")
    p.add_argument("--input", action="append", dest="inputs", metavar="NAME", help="the image input for Stage 1")
    p.add_argument("--allow-rejected", action="store_true",
                   help="accept an explicit Stage 1 holding ops the rules reject (e.g. the DFC accepts them)")
    p.add_argument("--no-dfc", action="store_true",
                   help="do not ask the DFC parser for end nodes even where it is installed")
    p.add_argument("--no-simplify", action="store_true",
                   help="split the graph as given (dynamic dims pinned, no constant folding)")
    p.add_argument("--no-int8-error", action="store_true",
                   help="do not measure the INT8 error of each candidate cut (largest device stage vs Model Zoo cut; "
                        "built-in emulator, seeded random calibration)")
    p.add_argument("--int8-range", type=_value_range, default=(0.0, 1.0), metavar="LO,HI",
                   help="value range of the random calibration/evaluation inputs of the INT8 error (default 0,1)")
    p.add_argument("--work-dir", metavar="DIR", default=None,
                   help="cache folder for the proven prepared graph and the quantized candidates. "
                        "Default: $HAILO_QA_STATE_DIR/work")
    p.add_argument("--no-cache", action="store_true",
                   help="prepare afresh: neither read nor write the cache of proven prepared graphs (DIR/prepared)")
    p.add_argument("--verify", type=verify_count, default=1, metavar="N",
                   help="prove stage2(stage1(x)) == model(x) bit-exactly on N random inputs before writing anything "
                        "(0: skip; default 1)")


def run(args) -> int:
    import dataclasses

    import numpy as np

    from hailo_qa import toolchain
    from hailo_qa.fsutil import check_out_dir
    from hailo_qa.graph.split import render_report, stages_from_onnx, write_stages
    from hailo_qa.graph.verify import verify_split

    check_out_dir(args.out, "--out")  # a file or a read-only folder fails before the work, not after
    result = stages_from_onnx(args.model, cut=args.cut, end_nodes=args.end_nodes, batch=args.batch,
                              shapes=shape_map(args.shape), reshape=args.reshape,
                              image_inputs=args.inputs, allow_rejected=args.allow_rejected,
                              use_dfc=not args.no_dfc and toolchain.dfc().found, simplify=not args.no_simplify,
                              cache_dir=None if args.no_cache else _work_dir(args) / "prepared")
    if args.verify:
        proof = verify_split(args.model, result, rng=np.random.default_rng(0), n=args.verify)
        if not proof:  # nothing is written: a failed proof leaves no stage files that look valid
            err = proof.error()
            err.hint = f"nothing was written to {args.out}. " + (err.hint or "")
            raise err
        result = dataclasses.replace(result, report={**result.report, "proof": proof.to_dict()})
    if result.report.get("candidates") and not args.no_int8_error:
        from hailo_qa.quant.cut_error import fill_candidate_errors

        fill_candidate_errors(result, work_dir=_work_dir(args), value_range=args.int8_range)
    result = write_stages(result, args.out)
    print(render_report(result.report))
    print(f"wrote {result.stage1_path}, {result.stage2_path}, split_report.json, split_report.md")
    if args.verify:
        print(f"equivalence on {args.verify} random input(s): {result.report['proof']['summary']}")
    return 0


def _work_dir(args):
    """``--work-dir``, else the state folder's ``work``: checked (not created) before the work starts."""
    from hailo_qa.fsutil import check_out_dir, state_subdir

    return check_out_dir(args.work_dir, "--work-dir") if args.work_dir else state_subdir("work", "--work-dir")
