"""Tools that evaluate the environments themselves, not part of the training path: defect
injection recipes (chart, web / HTML slides, python-pptx samples), the injection recall / trace /
clean-false-positive evaluation, self-score validation and the axe-core agreement check. Tests and
benchmarks use them; the trainer and the env workers never import them. Never imports jax.
"""
