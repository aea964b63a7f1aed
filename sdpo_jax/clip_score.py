"""Design2Code's CLIP score: cosine similarity of CLIP image embeddings of two page screenshots.

    scorer = ClipScorer.from_folder("/models/clip-vit-base-patch32")   # local HF folder
    scorer.page_similarity(ref_png_rgb, gen_png_rgb, ref_boxes, gen_boxes)   # in [-1, 1]

Recipe (Design2Code `metrics/visual_score.py`, `calculate_clip_similarity_with_blocks` and
`rescale_and_mask`, NoviScl/Design2Code): each screenshot first has its detected text blocks
removed, the mask being every block's box (x, y, w, h as fractions of the page, pixel edges
int(x * W), int(y * H), int(w * W), int(h * H)) inpainted with OpenCV's Telea method, radius
3 (nothing is inpainted on a page without blocks); then the page is squashed to a square of side
min(W, H) with LANCZOS (not cropped); then CLIP's preprocessing (`models.clip`) and the ViT-B/32
image tower; the score is the dot product of the two L2-normalised embeddings. Design2Code
masks the reference with its blocks (identical boxes merged) and the candidate with its blocks
after the matching pass merged neighbours in place (`find_possible_merge` mutates the list it
is given), so a caller holding `envs.web.design2code.match_blocks` output passes the merged
candidate blocks. The model must be `openai/clip-vit-base-patch32` for published numbers.

Lives in sdpo_jax, not envs/web, because it runs a jax model (envs never import jax).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import jax
import numpy as np
from flax import nnx
from PIL import Image

from models.clip import Clip, ClipImageProcessor, load_clip, normalize

Box = tuple[float, float, float, float]  # x, y, w, h as fractions of the page
INPAINT_RADIUS = 3


def mask_text(image_rgb: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """The page with every text box inpainted (Telea, radius 3), as Design2Code masks it."""
    image_rgb = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
    if not boxes:
        return image_rgb
    height, width = image_rgb.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for x, y, w, h in boxes:
        left, top = int(x * width), int(y * height)
        mask[max(top, 0):max(top + int(h * height), 0),
             max(left, 0):max(left + int(w * width), 0)] = 255
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.inpaint(bgr, mask, INPAINT_RADIUS, cv2.INPAINT_TELEA),
                        cv2.COLOR_BGR2RGB)


def squash_to_square(image_rgb: np.ndarray) -> Image.Image:
    """Resize (not crop) to a square of side min(W, H) with LANCZOS, as Design2Code does."""
    side = min(image_rgb.shape[:2])
    return Image.fromarray(image_rgb).resize((side, side), Image.LANCZOS)


@nnx.jit
def _embed(model: Clip, pixels_bchw: jax.Array) -> jax.Array:
    return normalize(model.image_features(pixels_bchw))


class ClipScorer:
    """A CLIP model and its preprocessing, loaded once; scores pairs of screenshots."""

    def __init__(self, model: Clip, processor: ClipImageProcessor):
        self.model = model
        self.processor = processor

    @classmethod
    def from_folder(cls, folder: str) -> "ClipScorer":
        """From a local HF CLIP folder: config.json, model.safetensors, preprocessor_config.json."""
        _, model = load_clip(folder)
        return cls(model, ClipImageProcessor.from_folder(folder))

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings [B, projection_dim]."""
        return np.asarray(_embed(self.model, self.processor(images)))

    def similarity(self, a: Image.Image, b: Image.Image) -> float:
        """Cosine similarity of two already-prepared images."""
        ea, eb = self.embed([a, b])
        return float(ea @ eb)

    def page_similarity(self, reference_rgb: np.ndarray, candidate_rgb: np.ndarray,
                        reference_boxes: Sequence[Box], candidate_boxes: Sequence[Box]) -> float:
        """Design2Code's CLIP score of a candidate page against its reference (module docstring)."""
        return self.similarity(squash_to_square(mask_text(reference_rgb, reference_boxes)),
                               squash_to_square(mask_text(candidate_rgb, candidate_boxes)))
