"""The slide environments: python-pptx programs rendered by a warm LibreOffice (`slide_pptx`) and
HTML slides at 1280x720 in Chromium (`slide_html`, the AeSlides setting), with defect detectors
traced to source lines and the AeSlides measures. Entry point: `make_env(domain, config_dict)`
(envs.registry). Never imports jax.
"""
from __future__ import annotations

from typing import Any


def make_env(domain: str, config: dict[str, Any] | None = None):
    """The registry's factory for 'slide_pptx' (PptxEnvConfig keys) and 'slide_html'
    (HtmlSlideEnvConfig keys)."""
    from envs.web.env import config_from_dict
    if domain == "slide_pptx":
        from envs.slide.pptx_env import PptxEnvConfig, PptxSlideEnv
        return PptxSlideEnv(config_from_dict(PptxEnvConfig, config, "slide_pptx env"))
    if domain == "slide_html":
        from envs.slide.html_slide import HtmlSlideEnv, HtmlSlideEnvConfig
        return HtmlSlideEnv(config_from_dict(HtmlSlideEnvConfig, config, "slide_html env"))
    raise ValueError(f"envs.slide makes 'slide_pptx' and 'slide_html' envs, not {domain!r}")
