"""The README says only what runs: its commands parse with the real parser, its two opening
commands are the ones CI and the scripts run, its Python example names what the package has,
and what it links to exists."""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import re
import shlex
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path

from pixelplayer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OPENING = ["bash scripts/main.sh", "bash scripts/test.sh"]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def shell_lines(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [c for line in joined.splitlines() if (c := line.split(" #")[0].strip()) and c[0] != "#"]


def pixelplayer_argv(command: str) -> list[str] | None:
    """The arguments after `pixelplayer` (or `-m pixelplayer`), or None for another command."""
    words = shlex.split(command)
    if words[:1] == ["pixelplayer"]:
        return words[1:]
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["-m", "pixelplayer"]:
            return words[i + 2 :]
    return None


def readme_commands() -> list[str]:
    """Every `pixelplayer ...` command of the README: in code spans and in shell blocks."""
    spans = [s.replace("\\|", "|") for s in re.findall(r"`([^`\n]+)`", README)]
    lines = [c for b in code_blocks(README, "bash") for c in shell_lines(b)]
    return [c for c in [*spans, *lines] if pixelplayer_argv(c)]  # not the bare program name


def _parses(argv: list[str]) -> str:
    """'' when the real parser takes `argv`, else what it said."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue() else f"exit {exc.code}"
    return ""


def test_readme_commands_parse():
    commands = readme_commands()
    assert len(commands) >= 15, commands  # the table of verbs is found
    verbs = {pixelplayer_argv(c)[0] for c in commands}
    assert {"data", "train", "eval", "separate"} <= verbs
    bad = {c: why for c in commands if (why := _parses(pixelplayer_argv(c)))}
    assert not bad, "README commands the parser refuses:\n" + "\n".join(
        f"{c}\n  -> {why}" for c, why in bad.items()
    )


def test_a_command_the_parser_refuses_is_caught():
    assert _parses(["train", "--no-such-option"])
    assert pixelplayer_argv("pip install 'pixelplayer[music]'") is None
    assert pixelplayer_argv("torchrun --nproc_per_node 2 -m pixelplayer eval R") == ["eval", "R"]


def test_opening_commands_are_what_ci_and_the_scripts_run():
    assert shell_lines(code_blocks(README, "bash")[0]) == OPENING
    ci = shell_lines((ROOT / ".ci" / "run").read_text())
    assert "bash scripts/test.sh" in ci  # CI runs the README's test command
    for command in OPENING:  # each sets the machine up first
        script = ROOT / command.split()[1]
        assert "bash scripts/setup.sh" in shell_lines(script.read_text()), script


def test_main_job_commands_parse():
    """scripts/main.sh, the README's first command, runs these `pixelplayer` commands."""
    lines = shell_lines((ROOT / "scripts" / "main.sh").read_text())
    commands = [
        line.replace("$pp ", "pixelplayer ", 1) for line in lines if line.startswith("$pp ")
    ]
    assert len(commands) >= 5
    bad = {c: why for c in commands if (why := _parses(pixelplayer_argv(c)))}
    assert not bad, bad


def test_links_and_scripts_named_exist():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    paths = re.findall(r"\b((?:benchmarks|scripts|docs)/[\w./-]+\.(?:py|sh|md))", README)
    missing = sorted({p for p in [*links, *paths] if not (ROOT / p).exists()})
    assert not missing, f"the README names files that do not exist: {missing}"


def test_python_example_names_what_the_package_has():
    """Its imports resolve; calls on a class use methods it has and keywords they take; the
    attributes read on a result are fields of what the call returns."""
    (block,) = code_blocks(README, "python")
    tree = ast.parse(block)
    names: dict[str, object] = {}  # variable -> the class or object it holds
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        owner = names.get(getattr(call.func.value, "id", ""))
        assert owner is not None, ast.unparse(call)
        method = getattr(owner, call.func.attr, None)
        assert method is not None, f"{owner} has no {call.func.attr}"
        params = inspect.signature(method).parameters
        unknown = {k.arg for k in call.keywords} - set(params)
        assert not unknown, f"{call.func.attr} takes no {unknown}"
        try:  # what the call gives: its return annotation (a classmethod's: its class)
            names[node.targets[0].id] = typing.get_type_hints(method).get("return", owner)
        except NameError:  # an annotation only a type checker resolves
            names[node.targets[0].id] = owner
    read = {
        (n.value.id, n.attr)
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    for var, attr in read:
        held = names.get(var)
        if is_dataclass(held):
            assert attr in {f.name for f in fields(held)} | set(dir(held)), f"{var}.{attr}"
    mentioned = re.findall(r"#.*?\b(\w+_waves)\b", block)  # fields named in the comments
    result = names.get("result")
    if is_dataclass(result):
        for attr in mentioned:
            assert attr in {f.name for f in fields(result)}, attr
