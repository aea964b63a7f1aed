"""The chart runner: what the sandbox child does with a matplotlib program (`envs.sandbox`).

`preload()` runs once in the sandbox server: imports matplotlib (Agg) and the libraries chart
programs use, installs the compat shims, the tracing hooks, ChartMimic's call recorders and
the stop hooks, and warms the font caches, so every forked run starts hot.

`run(code, request)` executes the program with hooks armed. Like ChartMimic's pipeline, the
program ends at its first `savefig`/`show` (what it drew so far is kept; nothing is written).
Then every figure it made and did not close is drawn at the Task's dpi (figures are stacked
top to bottom into one PNG), the scene is extracted and, when asked, the ChartMimic recording
made. These are artifacts, not verdicts: the detectors, fidelity scores and rewards are
computed by the judge outside the sandbox (`envs.chart.env`), which never trusts this process.
A program that raises, or ends without a figure, is a failure.
With `tight_bbox` (the env's default) the program's own `bbox_inches="tight"` is honoured, as
the benchmark's reference images were saved: a legend or title the saved image keeps is not
clipped. Without it the render is the whole figure canvas (how ChartMimic's evaluation renders
generated code: it strips the savefig), so text or axes outside the figure are cut off and
detected. Other savefig options never are honoured (format, dpi and file are the environment's).

request keys: width, height, dpi (the Task canvas: default figure size and the render dpi),
fidelity (bool), tight_bbox (bool), max_figures, max_pixels. Never imports jax; only runs
inside a sandbox child.
"""
from __future__ import annotations

import functools
import io
import math
import time
from typing import Any

_HOOKED: list[bool] = [False]
_STOP_ARMED = [False]
_CREATED: list[Any] = []  # strong refs: a Figure() held only by the program's namespace counts too
_CLOSED: set[int] = set()
_SAVE_OPTIONS: dict[int, dict[str, Any]] = {}
_DRAWN: list[tuple[str, Any]] = []
_RECORD_DRAWN = [False]

PRELOADED_MODULES = ("numpy", "pandas", "seaborn", "scipy", "scipy.stats", "scipy.interpolate",
                     "networkx", "squarify", "matplotlib_venn", "mpl_toolkits.mplot3d",
                     "matplotlib.gridspec", "matplotlib.patches", "matplotlib.ticker",
                     "matplotlib.tri", "matplotlib.dates", "PIL.Image", "PIL.PngImagePlugin")


def import_libraries() -> None:
    """matplotlib on Agg and the libraries chart programs use, imported once before any fork."""
    import importlib

    import matplotlib
    matplotlib.use("Agg")
    for name in PRELOADED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional plotting library: programs importing it fail honestly
            pass


def preload() -> None:
    import_libraries()
    import matplotlib.pyplot as plt

    # every module the forked runs use, imported before the fork (hooks need imports)
    from envs.chart import compat, extraction, fidelity, scene, tracing  # noqa: F401
    compat.install()
    tracing.install()
    fidelity.install()
    _install_runner_hooks()
    fig, ax = plt.subplots()  # warm font, mathtext and layout caches once for every fork
    ax.plot([0, 1], label="warm")
    ax.set_title(r"warm $\alpha^2$")
    ax.legend()
    fig.tight_layout()
    fig.canvas.draw()
    plt.close(fig)
    _DRAWN.clear()


def _install_runner_hooks() -> None:
    """Stop at savefig/show, remember created/closed figures, record every text drawn."""
    if _HOOKED[0]:
        return
    import matplotlib.pyplot as plt
    from matplotlib import _pylab_helpers
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.figure import Figure

    from envs.program import StopProgram

    def stop(*args, **kwargs):
        if _STOP_ARMED[0]:
            raise StopProgram()

    def stopping(fn, figure_of):
        @functools.wraps(fn)
        def stop_here(*args, **kwargs):
            if _STOP_ARMED[0]:
                options = {k: kwargs[k] for k in ("bbox_inches", "pad_inches") if k in kwargs}
                _SAVE_OPTIONS.setdefault(id(figure_of(args)), options)
                raise StopProgram()
            return fn(*args, **kwargs)
        return stop_here

    Figure.savefig = stopping(Figure.savefig, lambda args: args[0])
    plt.savefig = stopping(plt.savefig, lambda args: plt.gcf())
    plt.show = stop
    Figure.show = stop

    figure_init = Figure.__init__

    @functools.wraps(figure_init)
    def remembered_init(self, *args, **kwargs):
        figure_init(self, *args, **kwargs)
        if _STOP_ARMED[0]:
            _CREATED.append(self)
    Figure.__init__ = remembered_init

    gcf = _pylab_helpers.Gcf
    destroy = gcf.destroy.__func__

    def remembered_destroy(cls, num):
        manager = num if hasattr(num, "canvas") else cls.figs.get(num)
        if manager is not None and _STOP_ARMED[0]:
            _CLOSED.add(id(manager.canvas.figure))
        return destroy(cls, num)
    gcf.destroy = classmethod(remembered_destroy)
    destroy_all = gcf.destroy_all.__func__

    def remembered_destroy_all(cls):
        if _STOP_ARMED[0]:
            _CLOSED.update(id(m.canvas.figure) for m in cls.get_all_fig_managers())
        return destroy_all(cls)
    gcf.destroy_all = classmethod(remembered_destroy_all)

    draw_text = RendererAgg.draw_text

    @functools.wraps(draw_text)
    def recorded_draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if _RECORD_DRAWN[0]:
            _DRAWN.append((s, mtext))
        return draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
    RendererAgg.draw_text = recorded_draw_text
    _HOOKED[0] = True


def run(code: str, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    import matplotlib

    from envs.chart import fidelity, tracing
    from envs.chart.extraction import SceneBuilder
    from envs.chart.scene import scene_to_json
    from envs.feedback import ExecError
    from envs.program import StatementIndex, compile_program, run_program

    timings: dict[str, float] = {}
    start = time.perf_counter()
    width, height, dpi = int(request.get("width", 640)), int(request.get("height", 480)), int(request.get("dpi", 100))
    matplotlib.rcParams.update({"figure.figsize": (width / dpi, height / dpi), "figure.dpi": dpi,
                                "savefig.dpi": dpi})
    compiled = compile_program(code)
    if isinstance(compiled, ExecError):
        return _failure(compiled, timings), {}
    tracing.arm()
    fidelity.arm()
    _STOP_ARMED[0] = True
    try:
        error = run_program(compiled)
    finally:
        _STOP_ARMED[0] = False
        fidelity.disarm()
        tracing.disarm()
    timings["exec_s"] = time.perf_counter() - start
    if error is not None:
        return _failure(error, timings), {}
    figures = [f for f in _CREATED if id(f) not in _CLOSED]
    figures = figures[:int(request.get("max_figures", 4))]
    if not figures:
        return _failure(ExecError("NoFigure", "the program finished without a figure to render: draw "
                                              "with matplotlib (e.g. fig, ax = plt.subplots()) and do "
                                              "not close the figure"), timings), {}
    t = time.perf_counter()
    rendered, offset = [], 0
    max_pixels = float(request.get("max_pixels", 16e6))
    _RECORD_DRAWN[0] = True
    try:
        for fig in figures:
            w_in, h_in = fig.get_size_inches()
            fig_dpi = min(dpi, math.sqrt(max_pixels / max(w_in * h_in, 1e-6)))
            options = _SAVE_OPTIONS.get(id(fig), {}) if request.get("tight_bbox") else {}
            rendered.append(_render(fig, fig_dpi, options, offset))
            offset += rendered[-1].rgb.shape[0]
    except Exception as err:  # noqa: BLE001 - bad data often only fails when drawn
        return _failure(ExecError("RenderError", f"the figure could not be drawn: "
                                                 f"{type(err).__name__}: {str(err)[:500]}"), timings), {}
    finally:
        _RECORD_DRAWN[0] = False
    timings["render_s"] = time.perf_counter() - t
    t = time.perf_counter()
    scene = SceneBuilder(StatementIndex(code)).build(rendered, [text for _, text in _DRAWN])
    timings["extract_s"] = time.perf_counter() - t
    t = time.perf_counter()
    recording = fidelity.record(_DRAWN, figures) if request.get("fidelity") else None
    png = _png(scene.image)
    timings["encode_s"] = time.perf_counter() - t
    result = {"ok": True, "scene": scene_to_json(scene), "figures": len(figures),
              "fidelity": recording, "timings": timings}
    return result, {"render.png": png}


def _render(fig, dpi: float, save_options: dict[str, Any], offset_y: int):
    """Draw one figure; crop (or, when it reaches outside the figure, re-save) to the tight box
    when the program saved with bbox_inches="tight". Geometry always comes from the first draw."""
    import matplotlib
    import numpy as np

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from envs.chart.extraction import RenderedFigure
    if not isinstance(fig.canvas, FigureCanvasAgg):  # a Figure() made without pyplot
        FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    rgb = _over_white(np.asarray(fig.canvas.buffer_rgba()))
    height, width = rgb.shape[:2]
    if save_options.get("bbox_inches") != "tight":
        return RenderedFigure(fig, renderer, rgb, offset_y, left=0.0, top=float(height))
    pad = save_options.get("pad_inches")
    pad = matplotlib.rcParams["savefig.pad_inches"] if pad in (None, "layout") else float(pad)
    bbox = fig.get_tightbbox(renderer).padded(pad)
    left, bottom, right, top = (v * dpi for v in bbox.extents)
    if left >= 0 and bottom >= 0 and right <= width and top <= height:
        x0, x1 = int(math.floor(left)), int(math.ceil(right))
        y0, y1 = int(math.floor(height - top)), int(math.ceil(height - bottom))
        return RenderedFigure(fig, renderer, rgb[y0:y1, x0:x1].copy(), offset_y, left=float(x0),
                              top=float(height - y0))
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=dpi, bbox_inches=bbox)
    # The tight save drew in a shifted frame, and offset boxes (legends, annotations' boxes)
    # keep the positions of their last draw: draw again so geometry is the first draw's frame.
    fig.canvas.draw()
    data = np.frombuffer(raw.getvalue(), dtype=np.uint8)
    out_w = next(w for w in (round(right - left), int(right - left), int(right - left) + 1)
                 if w > 0 and data.size % (4 * w) == 0)
    rgba = data.reshape(-1, out_w, 4)
    return RenderedFigure(fig, renderer, _over_white(rgba), offset_y, left=left,
                          top=top)


def _failure(error, timings: dict[str, float]) -> dict[str, Any]:
    return {"ok": False, "error": error.to_json(), "timings": timings}


def _over_white(rgba):
    import numpy as np
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    if (alpha == 1.0).all():
        return rgba[..., :3].copy()
    return (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)


def _png(rgb) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG", compress_level=1)
    return out.getvalue()
