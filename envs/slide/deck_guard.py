"""Whether a deck the sandbox saved is safe to open: checked as a zip before anything reads it.

The .pptx comes from the process that ran model code, and both LibreOffice and python-pptx
(in the judge) would open it. So before either does, its zip directory is read (sizes only, no
member is decompressed): too many members, a member or a total above its limit, or a member
that claims more than MAX_RATIO times its compressed size (a zip bomb) refuse the deck; and
every relationship part is read (each within its size limit) for external targets
(TargetMode="External": linked pictures, media, OLE objects, other files; hyperlinks, which are
only click targets, stay allowed), which refuse it too. Never imports jax.
"""
from __future__ import annotations

import io
import re
import zipfile

MAX_MEMBERS = 4000
MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 256 << 20
MAX_RATIO = 200  # uncompressed / compressed, per member above 1 MiB
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
_EXTERNAL = re.compile(rb"TargetMode\s*=\s*[\"']External[\"']")
_HYPERLINK = re.compile(rb"Type\s*=\s*[\"'][^\"']*/hyperlink[\"']")  # a click target, never fetched


def deck_problem(deck: bytes) -> str | None:
    """Why the deck must not be opened (a message naming the fix), or None when it may be."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(deck))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        return f"the saved deck is not a .pptx (zip) file ({err})"
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            return f"the deck has {len(members)} parts, over {MAX_MEMBERS}"
        total = 0
        for info in members:
            total += info.file_size
            if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                return (f"the deck's part {info.filename!r} unpacks to {info.file_size} bytes "
                        f"(limits: {MAX_MEMBER_BYTES} per part, {MAX_TOTAL_BYTES} in all); use "
                        "smaller pictures")
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(1, info.compress_size):
                return f"the deck's part {info.filename!r} is a zip bomb ({info.file_size} bytes " \
                       f"from {info.compress_size})"
        for info in members:
            if info.filename.endswith(".rels"):
                try:
                    if any(_EXTERNAL.search(rel) and not _HYPERLINK.search(rel)
                           for rel in _RELATIONSHIP.findall(archive.read(info))):
                        return (f"the deck links an external resource ({info.filename}); embed "
                                "pictures and leave out links to files or URLs")
                except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as err:
                    return f"the deck's part {info.filename!r} cannot be read ({err})"
    return None
