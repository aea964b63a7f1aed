"""Visual-SDPO on slide generation (HTML slides at 1280x720, AeSlides setting) with Qwen3-VL-8B.

    launch/tpu_pod.sh ... -- --config=configs/slide_8b.py --workdir=gs://BUCKET/runs/slide_8b
Data: AeSlides-style instruction JSONL ({id, instruction}); python-pptx slides use the
"slide_instructions" format in another source.
"""
from configs.pod_8b import pod_config


def get_config():
    return pod_config(
        sources=[dict(path="aeslides_7k.jsonl", format="aeslides", weight=1.0)],
        max_new_tokens=4096, max_prompt_tokens=1024, teacher_max_prompt_tokens=8192,
        image_max_pixels=1280 * 720,
        eval_source=dict(path="aeslides_examples.jsonl", format="aeslides"))
