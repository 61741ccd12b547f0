#!/usr/bin/env python3
"""Reads and edits the appliance's .env in place, for `make rollback`, `make roll-forward`
and `make stage` (and the Makefile's GPU default).

    scripts/envfile.py [--file .env] get NAME [DEFAULT]
    scripts/envfile.py [--file .env] set NAME=VALUE ...
    scripts/envfile.py [--file .env] rollback
    scripts/envfile.py [--file .env] roll-forward [--gpu rocm|cuda|sim]
    scripts/envfile.py [--file .env] stage shadow|partial|primary

An edit changes only the value of the named lines: every other line, comment, blank line and
the inline comment after the value stay as they were; a name not in the file is appended.
The file is replaced atomically and keeps its mode (it holds secrets). Standard library only:
it runs before `make install` has made a virtualenv.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

# NAME=value   # comment   (compose's dotenv: an unquoted value ends at whitespace + '#')
LINE = re.compile(
    r"^(?P<head>\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:(?!\s+#)[^\n])*?)"
    r"(?P<tail>\s+#.*|\s*)$"
)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STAGES = ("shadow", "partial", "primary")
GPUS = ("rocm", "cuda", "sim")


class EnvFileError(Exception):
    pass


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.strip()


def _quote(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise EnvFileError("a value cannot span lines")
    if value and (re.search(r"\s|#|\"|'", value)):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in _lines(path):
        m = LINE.match(line.rstrip("\n"))
        if m and not line.lstrip().startswith("#"):
            values.setdefault(m["name"], _unquote(m["value"]))
    return values


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        raise EnvFileError(f"{path}: no such file (copy .env.example to .env first)") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise EnvFileError(f"{path}: not a text file ({exc.__class__.__name__})") from None


def update(path: Path, changes: dict[str, str]) -> None:
    lines = _lines(path)
    pending = dict(changes)
    for i, line in enumerate(lines):
        m = LINE.match(line.rstrip("\n"))
        if not m or line.lstrip().startswith("#") or m["name"] not in pending:
            continue
        value = _quote(pending.pop(m["name"]))
        end = "\n" if line.endswith("\n") else ""
        tail = m["tail"]
        # Keep the inline comment where it was: the new value takes the old one's width.
        if tail.strip():
            width = len(m["value"]) + len(tail) - len(tail.lstrip())
            tail = " " * max(1, width - len(value)) + tail.lstrip()
        lines[i] = m["head"] + value + tail + end
    if pending:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += [f"{name}={_quote(value)}\n" for name, value in pending.items()]
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".env.", text=True)
    try:
        with os.fdopen(fd, "w") as out:
            out.writelines(lines)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rollback_changes(current: dict[str, str]) -> dict[str, str]:
    """The local model off and no model server started: the cloud providers and the rules answer.
    The GPU profile in force is remembered for roll-forward (a second rollback keeps it)."""
    gpu = current.get("GPU") or "rocm"
    before = current.get("GPU_BEFORE_ROLLBACK") or (gpu if gpu != "none" else "rocm")
    return {"LOCAL_LLM_ENABLED": "false", "GPU": "none", "GPU_BEFORE_ROLLBACK": before}


def roll_forward_changes(current: dict[str, str], gpu: str | None) -> dict[str, str]:
    target = gpu or current.get("GPU_BEFORE_ROLLBACK") or current.get("GPU") or "rocm"
    if target == "none":
        target = "rocm"
    return {"LOCAL_LLM_ENABLED": "true", "GPU": target, "GPU_BEFORE_ROLLBACK": ""}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/envfile.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, default=Path(".env"))
    sub = p.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", help="print a value (the default when unset or empty)")
    get.add_argument("name")
    get.add_argument("default", nargs="?", default="")
    put = sub.add_parser("set", help="set NAME=VALUE pairs")
    put.add_argument("pairs", nargs="+", metavar="NAME=VALUE")
    sub.add_parser("rollback", help="LOCAL_LLM_ENABLED=false, GPU=none (the GPU in force remembered)")
    fwd = sub.add_parser("roll-forward", help="LOCAL_LLM_ENABLED=true, GPU back to what it was")
    fwd.add_argument("--gpu", choices=GPUS)
    stage = sub.add_parser("stage", help="ROLLOUT_STAGE=shadow|partial|primary")
    stage.add_argument("stage", choices=STAGES)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path: Path = args.file
    try:
        if args.command == "get":
            print(read(path).get(args.name) or args.default)
            return 0
        if args.command == "set":
            changes = {}
            for pair in args.pairs:
                name, sep, value = pair.partition("=")
                if not sep or not NAME.match(name):
                    raise EnvFileError(f"not NAME=VALUE: {pair!r}")
                changes[name] = value
        elif args.command == "rollback":
            changes = rollback_changes(read(path))
        elif args.command == "roll-forward":
            changes = roll_forward_changes(read(path), args.gpu)
        else:
            changes = {"ROLLOUT_STAGE": args.stage}
        update(path, changes)
    except EnvFileError as exc:
        print(f"envfile: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: " + " ".join(f"{k}={v}" for k, v in changes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
