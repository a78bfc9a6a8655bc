"""Go's notion of white space, used where status-go splits user text with ``strings.Fields``."""

from __future__ import annotations

import re

# unicode.IsSpace: the Latin-1 spaces plus the other White_Space code points. Python's str.split() would also
# split on U+001C..U+001F, which Go does not treat as space.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_FIELDS = re.compile(f"[^{re.escape(GO_SPACE)}]+")


def go_fields(text: str) -> list[str]:
    """Split ``text`` around runs of white space exactly as Go's ``strings.Fields`` does."""
    return _FIELDS.findall(text)
