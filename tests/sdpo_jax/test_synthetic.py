"""Synthetic chart tasks: deterministic disjoint splits, reference programs the chart env finds
clean, and defect levers that the env detects and traces to their own statement exactly on the
tasks where the careless choice is defective.

The fast tests judge 16 tasks; `test_levers_on_a_large_sample` (slow) judges 300 and prints
the measured rates (run with -s to see them).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from envs.feedback import Feedback
from envs.pool import EnvPool
from sdpo_jax.synthetic.generate import SPLITS, generate_spec, split_of
from sdpo_jax.synthetic.levers import (ERROR, LEVERS, applicable, defective, is_pale,
                                       sample_careless)
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.synthetic.spec import KINDS, ChartSpec
from sdpo_jax.synthetic.tasks import (RECORD_FIELDS, instruction, make_record, synthetic_task,
                                      task_from_record)

MIN_DETECTION = 0.95


@dataclasses.dataclass
class LeverCount:
    defective: int = 0  # tasks where the careless choice is defective
    caught: int = 0  # ... on which the env reported the lever's effect traced to its statement
    other_kinds: int = 0  # ... on which the careless program also had another new defect kind
    harmless: int = 0  # tasks where the careless choice is not defective
    fired: int = 0  # ... on which the env still reported the lever's effect

    def line(self, name: str) -> str:
        rate = self.caught / self.defective if self.defective else float("nan")
        return (f"{name:14s} caught {self.caught}/{self.defective} ({rate:.1%}), other kinds "
                f"{self.other_kinds}, fired when harmless {self.fired}/{self.harmless}")


def shows_effect(feedback: Feedback, effect: str, span: tuple[int, int]) -> bool:
    """The lever's effect, traced to its statement: a failure on its line, or a defect of its
    kind whose traced lines touch its span."""
    if effect == ERROR:
        line = None if feedback.error is None else feedback.error.line
        return not feedback.ok and line is not None and span[0] <= line <= span[1]
    return any(d.kind == effect and any(a <= span[1] and span[0] <= b for a, b in d.lines)
               for d in feedback.defects)


def has_effect(feedback: Feedback, effect: str) -> bool:
    return not feedback.ok if effect == ERROR else any(d.kind == effect for d in feedback.defects)


def judge_levers(indices: range, split: str = "validation"
                 ) -> tuple[list[str], dict[str, LeverCount]]:
    """Judge the reference and every single-lever careless variant of the tasks in a 2-worker
    pool; returns the reference failures and the per-lever counts."""
    jobs = []
    for index in indices:
        task = dataclasses.replace(synthetic_task(split, index), target=None)  # defects only
        spec = ChartSpec.from_json(task.meta["spec"])
        jobs.append((task, spec, None, write_program(spec)))
        jobs += [(task, spec, lever, write_program(spec, {lever})) for lever in applicable(spec)]
    with EnvPool(2, warm=("chart",)) as pool:
        feedbacks = pool.map([(task, program.code) for task, _, _, program in jobs])
    unclean, reference_kinds = [], {}
    counts = {name: LeverCount() for name in LEVERS}
    for (task, spec, lever, program), feedback in zip(jobs, feedbacks):
        if lever is None:
            reference_kinds[task.task_id] = {d.kind for d in feedback.defects}
            if not feedback.ok or feedback.defects:
                found = feedback.to_json()["defects"] or feedback.to_json()["error"]
                unclean.append(f"{task.task_id}: {json.dumps(found)}\n{program.code}")
            continue
        count, effect = counts[lever], LEVERS[lever].effect
        if LEVERS[lever].defective(spec):
            count.defective += 1
            count.caught += shows_effect(feedback, effect, program.spans[lever])
            extra = {d.kind for d in feedback.defects} - reference_kinds[task.task_id] - {effect}
            count.other_kinds += bool(extra)
        else:
            count.harmless += 1
            count.fired += has_effect(feedback, effect)
    return unclean, counts


def check_levers(indices: range, min_defective: int) -> None:
    unclean, counts = judge_levers(indices)
    print("\n" + "\n".join(count.line(name) for name, count in counts.items()))
    assert not unclean, \
        f"{len(unclean)} reference programs are not clean:\n" + "\n".join(unclean[:3])
    for name, count in counts.items():
        assert count.defective >= min_defective, f"{name}: only {count.defective} defective cases"
        assert count.caught >= MIN_DETECTION * count.defective, count.line(name)


def test_levers_on_a_small_sample():
    check_levers(range(16), min_defective=2)


@pytest.mark.slow
def test_levers_on_a_large_sample():
    check_levers(range(1000, 1300), min_defective=20)


def test_generation_is_deterministic_and_splits_are_disjoint():
    for split in SPLITS:
        assert generate_spec(split, 5) == generate_spec(split, 5)
        assert all(split_of(generate_spec(split, i)) == split for i in range(50))
    texts = {split: {instruction(generate_spec(split, i)) for i in range(200)} for split in SPLITS}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]


def test_at_least_a_hundred_thousand_distinct_tasks():
    # the space is far larger than 10^5; here: no repeat among 3000 of them
    texts = {instruction(generate_spec("train", i)) for i in range(3000)}
    assert len(texts) == 3000


@pytest.mark.slow
def test_a_hundred_thousand_train_tasks_are_distinct():
    texts = {instruction(generate_spec("train", i)) for i in range(100_000)}
    assert len(texts) == 100_000


def test_every_kind_occurs_and_careless_choices_are_defective_on_some_tasks_only():
    specs = [generate_spec("train", i) for i in range(400)]
    assert set(KINDS) == {s.kind for s in specs}
    triggered = collections.Counter(lever for s in specs for lever in defective(s))
    applied = collections.Counter(lever for s in specs for lever in applicable(s))
    for name in LEVERS:
        assert triggered[name] > 0, f"{name} is never defective"
    for name in ("tick_rotation", "legend_loc", "title_size", "label_color"):
        assert 0.15 < triggered[name] / applied[name] < 0.85, \
            f"{name}: defective on {triggered[name]} of {applied[name]} tasks; the task must decide"
    assert 0.15 < applied["missing_value"] / len(specs) < 0.5, \
        "only some tasks have a missing value"


def test_instruction_states_the_data_the_program_draws():
    spec = generate_spec("train", 3)
    text, code = instruction(spec), write_program(spec).code
    assert spec.title in text and spec.title in code
    for series in spec.series:
        for value in series.values:
            assert (str(value) if value is not None else "n/a") in text
    assert 'plt.savefig("chart.png")' in text and code.rstrip().endswith('plt.savefig("chart.png")')


def test_careless_levers_change_only_their_own_statement():
    for index in range(60):
        spec = generate_spec("train", index)
        reference = write_program(spec)
        for lever in applicable(spec):
            careless = write_program(spec, {lever})
            assert careless.spans == reference.spans
            before, after = reference.code.splitlines(), careless.code.splitlines()
            changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
            first, last = careless.spans[lever]
            assert len(before) == len(after) and all(first <= line <= last for line in changed), \
                f"{lever} changed lines {changed}, outside its span {careless.spans[lever]}"


def test_programs_are_short():
    lengths = [len(write_program(generate_spec("train", i)).code.splitlines()) for i in range(200)]
    assert 7 <= min(lengths) and max(lengths) <= 25, (min(lengths), max(lengths))


def test_a_lever_the_task_has_no_statement_for_is_refused():
    pie = next(s for s in map(lambda i: generate_spec("train", i), range(100)) if s.kind == "pie")
    with pytest.raises(ValueError, match="do not apply"):
        write_program(pie, {"tick_rotation"})
    with pytest.raises(ValueError, match="unknown lever"):
        write_program(pie, {"no_such_lever"})


def test_careless_prior_is_seeded_and_follows_its_probability():
    specs = [generate_spec("train", i) for i in range(300)]
    draw = lambda seed: [sample_careless(s, 0.5, np.random.default_rng([seed, i]))
                         for i, s in enumerate(specs)]
    assert draw(1) == draw(1)
    chosen = sum(len(c) for c in draw(2))
    offered = sum(len(applicable(s)) for s in specs)
    assert 0.4 < chosen / offered < 0.6
    assert all(not c for c in [sample_careless(s, 0.0, np.random.default_rng(0)) for s in specs])
    only = [sample_careless(s, {"title_size": 1.0}, np.random.default_rng(0)) for s in specs]
    assert all(c == {"title_size"} for c in only)
    with pytest.raises(ValueError, match="careless probabilities"):
        sample_careless(specs[0], {"title_size": 1.5}, np.random.default_rng(0))


def test_pale_and_dark_colours_are_told_apart():
    assert is_pale("#f9e79f") and is_pale("#aed6f1") and not is_pale("#1f3a93")


def test_records_round_trip_to_tasks(tmp_path):
    out = tmp_path / "train.jsonl"
    subprocess.run([sys.executable, "-m", "sdpo_jax.synthetic", "write", "--split", "train",
                    "--count", "5", str(out)], check=True)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == list(range(5)) and rows[2] == make_record("train", 2)
    assert all(set(RECORD_FIELDS) <= set(r) for r in rows)
    task = task_from_record(rows[0])
    assert task == synthetic_task("train", 0)
    assert task.domain == "chart" and task.target == rows[0]["code"]
    assert ChartSpec.from_json(task.meta["spec"]) == generate_spec("train", 0)
    assert task.meta["target_image"] is False
    with pytest.raises(ValueError, match="lacks field"):
        task_from_record({k: v for k, v in rows[0].items() if k != "spec"})
