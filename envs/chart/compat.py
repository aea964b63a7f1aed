"""Aliases for matplotlib APIs that model code (and ChartMimic's reference programs, written for
older matplotlib) still uses but matplotlib 3.11 removed. Installed once in the sandbox server.

Each shim restores the old spelling with the old meaning and nothing else:
- `matplotlib.cm.get_cmap(name, lut)` (removed in 3.9) -> `matplotlib.colormaps[name]`, resampled;
- `Axes.boxplot(labels=...)` (renamed `tick_labels` in 3.9, removed in 3.11);
- `plt.style.use("seaborn-<style>")` (renamed "seaborn-v0_8-<style>" in 3.6).
Never imports jax; never loaded outside a sandbox runner.
"""
from __future__ import annotations

import functools

import matplotlib
import matplotlib.cm
import matplotlib.style
from matplotlib.axes import Axes


def install() -> None:
    """Install every shim; idempotent."""
    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = _get_cmap
    if not getattr(Axes.boxplot, "_sdpo_compat", False):
        Axes.boxplot = _boxplot_with_labels(Axes.boxplot)
    if not getattr(matplotlib.style.use, "_sdpo_compat", False):
        matplotlib.style.use = _style_use_with_old_seaborn_names(matplotlib.style.use)  # = plt.style.use


def _get_cmap(name=None, lut=None):
    cmap = matplotlib.colormaps[name if name is not None else matplotlib.rcParams["image.cmap"]] \
        if not isinstance(name, matplotlib.colors.Colormap) else name
    return cmap if lut is None else cmap.resampled(lut)


def _boxplot_with_labels(boxplot):
    @functools.wraps(boxplot)
    def compat_boxplot(self, *args, labels=None, **kwargs):
        if labels is not None and "tick_labels" not in kwargs:
            kwargs["tick_labels"] = labels
        return boxplot(self, *args, **kwargs)
    compat_boxplot._sdpo_compat = True
    return compat_boxplot


def _style_use_with_old_seaborn_names(use):
    available = set(matplotlib.style.available)

    def rename(style):
        if isinstance(style, str) and style.startswith("seaborn") and style not in available:
            new = style.replace("seaborn", "seaborn-v0_8", 1)
            return new if new in available else style
        return style

    @functools.wraps(use)
    def compat_use(style):
        if isinstance(style, (list, tuple)):
            return use([rename(s) for s in style])
        return use(rename(style))
    compat_use._sdpo_compat = True
    return compat_use
