"""Visual-SDPO on chart-to-code (matplotlib) with Qwen3-VL-8B-Instruct on a TPU pod.

    launch/tpu_pod.sh --name sdpo-chart --zone ZONE --accelerator v5p-64 -- \
        --config=configs/chart_8b.py --workdir=gs://BUCKET/runs/chart_8b \
        --config.model.checkpoint=/data/Qwen3-VL-8B-Instruct
Data: ChartMimic-format / Chart2Code-style JSONL in local folders (the paper trains on the
executable subset of Chart2Code-160K); edit `sources`.
"""
from configs.pod_8b import pod_config


def get_config():
    return pod_config(
        sources=[dict(path="chart2code_160k.jsonl", format="chart2code", weight=1.0)],
        max_new_tokens=2048, max_prompt_tokens=1536, teacher_max_prompt_tokens=6144,
        image_max_pixels=1024 * 768,
        eval_source=dict(path="chartmimic_direct_v1.jsonl", format="chartmimic"))
