"""The one extraction rule shared by envs and credit weighting: which characters are the program."""
from __future__ import annotations

import pytest

from envs.code_extract import count_line_breaks, extract_code, line_of, line_starts


@pytest.mark.parametrize("reply,code,fenced", [
    ("```python\nprint(1)\n```\nbye", "print(1)\n", True),
    ("intro\n```py\nprint(1)\n", "print(1)\n", True),                      # cut off: no closing fence
    ("```bash\npip install x\n```\n~~~~python\nx = 1\n~~~~\n", "x = 1\n", True),
    ("```\nplain = 1\n```", "plain = 1\n", True),
    ("```python title=a.py\r\nx = 1\r\n```\r\n", "x = 1\r\n", True),
    ("x = 1\nprint(x)\n", "x = 1\nprint(x)\n", False),
    ("```javascript\nalert(1)\n```", "```javascript\nalert(1)\n```", False),
])
def test_extract_code_finds_the_program_and_its_offset(reply, code, fenced):
    extracted = extract_code(reply, "python")
    assert (extracted.code, extracted.fenced) == (code, fenced)
    assert reply[extracted.offset:extracted.offset + len(code)] == code


def test_extract_code_line_mapping_and_errors():
    extracted = extract_code("a\r\nb\r\n```html\r\n<p>x</p>\r\n```", "html")
    assert extracted.code == "<p>x</p>\r\n" and extracted.to_reply_line(1) == 4
    with pytest.raises(ValueError, match="unknown language 'css'"):
        extract_code("x", "css")


@pytest.mark.parametrize("text", ["a\r\nb\rc\nd", "\n\n", "no break", "x\r\n\r\ny\n"])
def test_lines_follow_pythons_universal_newlines(text):
    starts = line_starts(text)
    assert len(starts) == count_line_breaks(text) + 1 == len(text.splitlines()) + (
        1 if text.endswith(("\n", "\r")) or not text else 0)
    assert [line_of(starts, p) for p in starts] == list(range(1, len(starts) + 1))
