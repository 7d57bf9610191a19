"""hailo-qa split MODEL --out DIR [--cut NAMES] [--end-nodes NAMES] [--batch 1]"""
from __future__ import annotations

HELP = "split a model into a device Stage 1 and a host Stage 2 (stage1.onnx, stage2.onnx, split_report.{json,md})"


from hailo_qa.commands.lint import parse_shape  # noqa: E402,F401  (shared option parser)
from hailo_qa.options import batch_size, verify_count  # noqa: E402


def _names(value: str) -> list[str]:
    import argparse

    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"Could not parse value: {value!r}. Expected comma-separated tensor or node "
                                         "names, e.g. /model/conv5/Relu_output_0 (omit the option for an automatic "
                                         "split)")
    return names


def add_arguments(p) -> None:
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cut", type=_names, default=[], metavar="NAMES",
                   help="comma-separated Stage-1 output tensors (default: automatic)")
    p.add_argument("--end-nodes", type=_names, default=[], metavar="NAMES",
                   help="comma-separated Stage-1 end nodes (their outputs become the cut)")
    p.add_argument("--batch", type=batch_size, default=1, help="static size for a dynamic batch (default 1)")
    p.add_argument("--shape", type=parse_shape, action="append", default=[], metavar="NAME=D0,D1,..",
                   help="static shape of an input with dynamic dims, e.g. x=1,3,48,320 (repeatable)")
    p.add_argument("--input", action="append", dest="inputs", metavar="NAME", help="the image input for Stage 1")
    p.add_argument("--allow-rejected", action="store_true",
                   help="accept an explicit Stage 1 holding ops the rules reject (e.g. the DFC accepts them)")
    p.add_argument("--no-dfc", action="store_true",
                   help="do not ask the DFC parser for end nodes even where it is installed")
    p.add_argument("--verify", type=verify_count, default=1, metavar="N",
                   help="check stage2(stage1(x)) == model(x) bit-exactly on N random inputs (0: skip; default 1)")


def run(args) -> int:
    import numpy as np

    from hailo_qa import toolchain
    from hailo_qa.fsutil import check_out_dir
    from hailo_qa.graph.split import render_report, stages_from_onnx, write_stages
    from hailo_qa.graph.verify import verify_split

    check_out_dir(args.out, "--out")  # a file or a read-only folder fails before the work, not after
    result = stages_from_onnx(args.model, cut=args.cut, end_nodes=args.end_nodes, batch=args.batch,
                              shapes=dict(args.shape) or None,
                              image_inputs=args.inputs, allow_rejected=args.allow_rejected,
                              use_dfc=not args.no_dfc and toolchain.dfc().found)
    result = write_stages(result, args.out)
    print(render_report(result.report))
    print(f"wrote {result.stage1_path}, {result.stage2_path}, split_report.json, split_report.md")
    if args.verify:
        cmp = verify_split(args.model, result, rng=np.random.default_rng(0), n=args.verify)
        print(f"equivalence on {args.verify} random input(s): {'bit-exact' if cmp else 'MISMATCH'}")
        if not cmp:
            print(cmp)
            return 1
    return 0
