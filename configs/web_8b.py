"""Visual-SDPO on UI-to-code (HTML/CSS rendered in Chromium) with Qwen3-VL-8B on a TPU pod.

    launch/tpu_pod.sh ... -- --config=configs/web_8b.py --workdir=gs://BUCKET/runs/web_8b
Data: WebCode2M / WebSight-style JSONL ({text|html}) in local folders.
"""
from configs.pod_8b import pod_config


def get_config():
    c = pod_config(
        sources=[dict(path="websight.jsonl", format="websight", weight=1.0),
                 dict(path="webcode2m.jsonl", format="websight", weight=1.0)],
        max_new_tokens=4096, max_prompt_tokens=3072, teacher_max_prompt_tokens=8192,
        image_max_pixels=1280 * 1024,
        eval_source=dict(path="design2code_testset.jsonl", format="design2code"))
    return c
