"""Which files ``docker build`` sends: .dockerignore read with Docker's own rules.

Docker (moby/patternmatcher) cleans each pattern, reads ``**`` as any number of folders, ``*``
and ``?`` within one path segment, and lets a pattern that matches a parent folder match the
file too; the last pattern that matches decides, ``!`` re-admitting.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

# Big tool folders, never part of the build context: not walked at all.
TOOL_FOLDERS = (".git", ".venv", "node_modules", ".mypy_cache")


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    admits: bool  # a "!" pattern

    def matches(self, path: str) -> bool:
        if self.regex.match(path):
            return True
        parents = path.split("/")[:-1]
        return any(self.regex.match("/".join(parents[:i + 1])) for i in range(len(parents)))


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(f"^{out}$")


def read_dockerignore(path: Path) -> list[IgnorePattern]:
    patterns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        admits = line.startswith("!")
        cleaned = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append(IgnorePattern(_regex(cleaned), admits))
    return patterns


def is_sent(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether the file at ``path`` (relative, with /) is in the build context."""
    excluded = False
    for pattern in patterns:
        # As Docker: an exclusion is only tried on what is still sent, and vice versa.
        if pattern.admits != excluded:
            continue
        if pattern.matches(path):
            excluded = not pattern.admits
    return not excluded


def working_tree_files(root: Path) -> list[str]:
    """The files under ``root`` (relative, with /), the big tool folders aside."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in TOOL_FOLDERS]
        found += [Path(folder, name).relative_to(root).as_posix() for name in files]
    return found


def build_context(root: Path) -> list[str]:
    """The files of the working tree at ``root`` that ``docker build`` would send."""
    patterns = read_dockerignore(root / ".dockerignore")
    return [path for path in working_tree_files(root) if is_sent(path, patterns)]
