"""docker/Dockerfile read as Docker reads it: instructions per stage, exec-form arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass

from idp.config import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "docker" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            joined.append(pending.strip())
            pending = ""
    stage, result = -1, []
    for text in joined:
        keyword, _, arguments = text.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return result


def final_stage() -> list[Instruction]:
    everything = instructions()
    last = max(item.stage for item in everything)
    return [item for item in everything if item.stage == last]


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of a CMD, ENTRYPOINT or HEALTHCHECK CMD."""
    text = instruction.arguments
    return list(json.loads(text[text.index("["):]))


def image_command() -> list[str]:
    return exec_form(next(item for item in reversed(final_stage()) if item.keyword == "CMD"))


def image_env() -> dict[str, str]:
    """The final stage's ENV settings (KEY=value pairs)."""
    values: dict[str, str] = {}
    for item in final_stage():
        if item.keyword == "ENV":
            for pair in item.arguments.split():
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def folders_made_for_the_user() -> set[str]:
    """Folders the final stage creates with ``install -d -o <user>``: volume mount points."""
    folders: set[str] = set()
    for item in final_stage():
        if item.keyword == "RUN" and "install -d" in item.arguments:
            for made in item.arguments.split("install -d")[1:]:
                words = made.split("&&")[0].split()
                folders |= {word for word in words if word.startswith("/")}
    return folders
