"""hailo-qa lint MODEL [--json]"""
from __future__ import annotations

HELP = "report which ONNX nodes Hailo-8 rejects, why, and the workaround (rules approximate the DFC parser)"


from hailo_qa.options import batch_size, non_negative_int, shape_map  # noqa: E402
from hailo_qa.options import input_shape as parse_shape  # noqa: E402  (NAME=1,3,48,320, bounded)


def add_arguments(p) -> None:
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--batch", type=batch_size, default=1, help="static size for a dynamic batch (default 1)")
    p.add_argument("--shape", type=parse_shape, action="append", default=[], metavar="NAME=D0,D1,..",
                   help="size of an input's dynamic dims, e.g. x=1,3,48,320 (repeatable; static dims must match)")
    p.add_argument("--reshape", action="store_true", help="let --shape change static dims too")
    p.add_argument("--input", action="append", dest="inputs", metavar="NAME",
                   help="image input(s) for the device stage (default: every float rank-4 input)")
    p.add_argument("--no-simplify", action="store_true", help="lint the graph as given (dynamic dims pinned, no constant folding)")
    p.add_argument("--no-dfc", action="store_true", help="do not consult the DFC parser even where installed")
    p.add_argument("--no-cache", action="store_true",
                   help="prepare afresh: neither read nor write the cache of proven prepared graphs "
                        "($HAILO_QA_STATE_DIR/work/prepared)")
    p.add_argument("--rules", metavar="TOML", help="alternative rule table")
    p.add_argument("--limit", type=non_negative_int, default=200, help="rows shown in the table (default 200)")


def run(args) -> int:
    import json

    from hailo_qa.fsutil import state_subdir
    from hailo_qa.graph.lint import lint_onnx

    cache = None if args.no_cache else state_subdir("work", "--no-cache") / "prepared"
    report = lint_onnx(args.model, batch=args.batch, shapes=shape_map(args.shape), image_inputs=args.inputs,
                       simplify=not args.no_simplify, reshape=args.reshape,
                       use_dfc=False if args.no_dfc else None, rules_path=args.rules, cache_dir=cache)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render(limit=args.limit))
    return 0
