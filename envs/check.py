"""Judge one program from the command line.

    python -m envs.check --domain chart CODE_FILE [--target TARGET_CODE_FILE] [--out DIR]
                         [--width W] [--height H] [--dpi D] [--config JSON] [--elements] [--reply]

CODE_FILE is the program (with --reply: a model's reply, whose program is found by the
trainer's rule, envs.code_extract; lines are then still the program's).

Prints the Feedback as one JSON object (no PNG): ok, error (null or {type, message, line}),
reward, reward_parts, defects (each {kind, severity, region [x0,y0,x1,y1], message,
lines [[first,last],...]}, lines 1-based inclusive), timings, render_size (and elements with
--elements). With --out, writes DIR/render.png, DIR/defects.png (each defect's region drawn
over the render, numbered as in the JSON) and DIR/feedback.json (with elements). The domain
is dispatched through `envs.registry`, so any registered domain works here unchanged.
Exit status: 0 when the program was judged (whatever its verdict), 2 for bad arguments or
unreadable files. Never imports jax.
"""
from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys

from envs import registry
from envs.code_extract import extract_code
from envs.feedback import Feedback
from envs.task import Task

KIND_COLORS = {"overlap": (230, 25, 75), "clipped_text": (245, 130, 48), "overflow": (145, 30, 180),
               "misalignment": (0, 130, 200), "low_contrast": (60, 180, 75),
               "legend_over_data": (240, 50, 230)}


def _read(parser: argparse.ArgumentParser, path: str, what: str) -> str:
    file = pathlib.Path(path)
    if not file.is_file():
        parser.error(f"{what} {path!r} does not exist or is not a file")
    return file.read_bytes().decode("utf-8", "surrogateescape")  # non-UTF-8 bytes stay visible


def overlay(feedback: Feedback) -> bytes | None:
    """The render with every defect's region outlined and numbered (PNG bytes)."""
    if feedback.render_png is None:
        return None
    from PIL import Image, ImageDraw
    image = Image.open(io.BytesIO(feedback.render_png)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i, defect in enumerate(feedback.defects, 1):
        color = KIND_COLORS.get(defect.kind, (0, 0, 0))
        x0, y0, x1, y1 = defect.region
        draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=color, width=2)
        draw.text((x0 + 2, max(0, y0 - 11)), f"{i}:{defect.kind}", fill=color)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m envs.check", description=__doc__.split("\n")[0])
    parser.add_argument("code_file", metavar="CODE_FILE")
    parser.add_argument("--domain", required=True, choices=sorted(registry.DOMAINS))
    parser.add_argument("--target", metavar="TARGET_CODE_FILE")
    parser.add_argument("--out", metavar="DIR")
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--dpi", type=int)
    parser.add_argument("--config", default="{}", help="the env's config as a JSON object")
    parser.add_argument("--elements", action="store_true", help="include the extracted elements")
    parser.add_argument("--reply", action="store_true",
                        help="CODE_FILE is a model reply: judge the program fenced in it")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        parser.error(f"--config must be a JSON object ({err})")
    code = _read(parser, args.code_file, "CODE_FILE")
    if args.reply:
        code = extract_code(code, registry.spec(args.domain).language).code
    target = _read(parser, args.target, "TARGET_CODE_FILE") if args.target else None
    canvas = registry.spec(args.domain)
    task = Task(domain=args.domain, task_id=pathlib.Path(args.code_file).stem, instruction="",
                target=target, width=args.width or canvas.width, height=args.height or canvas.height,
                dpi=args.dpi or canvas.dpi)
    env = registry.make_env(args.domain, config)
    try:
        feedback = env.step(task, code)
    finally:
        env.close()
    print(json.dumps(feedback.to_json(with_elements=args.elements), ensure_ascii=False))
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "feedback.json").write_text(json.dumps(feedback.to_json(with_elements=True), indent=1,
                                                      ensure_ascii=False))
        if feedback.render_png is not None:
            (out / "render.png").write_bytes(feedback.render_png)
            (out / "defects.png").write_bytes(overlay(feedback))
    return 0


if __name__ == "__main__":
    sys.exit(main())
