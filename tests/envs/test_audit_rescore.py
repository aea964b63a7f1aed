"""`python -m envs.eval.audit rescore`: judged low-contrast texts found again and classed."""
from __future__ import annotations

from envs.eval.audit import rescore_contrast
from envs.feedback import Defect, Feedback


def finding(message: str, advisory: bool) -> Defect:
    return Defect("low_contrast", 0.5, (0, 0, 1, 1), message, advisory=advisory)


class Closed:
    def close(self):
        pass


def test_each_judged_text_is_matched_by_description_and_nearest_ratio():
    index = {"domain": "chart", "artifacts": {"a": {"defects": {
        "1": {"kind": "low_contrast", "message": "text '20' has contrast 2.43:1 against its background (x)"},
        "2": {"kind": "low_contrast", "message": "text '20' has contrast 1.50:1 against its background (x)"},
        "3": {"kind": "low_contrast", "message": "title 'T' has contrast 4.10:1 against its background (x)"},
        "4": {"kind": "overlap", "message": "text '20' overlaps text '30'"}}},
        "b": {"defects": {"1": {"kind": "low_contrast", "message": "text 'x' has contrast 2.0:1 (x)"}}}}}
    verdicts = {"chart": {"a": {"1": "y", "2": "y", "3": "n", "4": "y"}, "b": {"1": "y"}}}
    now = {"a": Feedback(ok=True, defects=[finding("text '20' has contrast 1.52:1 (hard to read)", False)],
                         notes=[finding("text '20' has contrast 2.43:1 (readable)", True)]),
           "b": Feedback(ok=False)}
    counts = rescore_contrast(index, verdicts, rows={"a": {"id": "a"}, "b": {"id": "b"}},
                              judge=(Closed(), lambda row: now[row["id"]]))
    assert counts == {("y", "note"): 1, ("y", "defect"): 1, ("n", "gone"): 1, ("y", "failed"): 1}
