"""A small scanner for the subset of POSIX shell syntax ``_bash_`` lets through.

It does not run anything and does not try to understand all of bash: it finds words,
quotes and operators well enough to refuse what cannot be checked (command and process
substitution, parameter expansion, here-documents, brace expansion) and to hand the
policy the program name and path arguments of every simple command. When in doubt it
refuses: a false refusal costs the model one more try, a false pass costs the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Longest first, so "&&" wins over "&" and ">>" over ">".
_OPERATORS = (
    "&>>",
    "&&",
    "||",
    "|&",
    ";;",
    ">>",
    ">&",
    "<&",
    "&>",
    ">|",
    "<>",
    ";",
    "&",
    "|",
    ">",
    "<",
    "(",
    ")",
)
CONTROL_OPS = frozenset({"&&", "||", "|&", ";;", ";", "&", "|", "(", ")", "\n"})
REDIRECT_OPS = frozenset({">>", ">&", "<&", "&>", "&>>", ">|", "<>", ">", "<"})
_SPECIAL_PARAMS = set("?#@*!$-0123456789")


class Refused(Exception):
    """The command uses syntax that is not allowed; the message says which."""


@dataclass(slots=True)
class Word:
    value: str  # after quote removal
    raw: str
    glob: bool = False  # an unquoted * ? [ (shell mode expands it)
    tilde: bool = False  # an unquoted ~ at the start (shell mode expands it)


@dataclass(slots=True)
class Op:
    text: str
    fd: str = ""  # "2" in "2>"


Token = Word | Op


@dataclass(slots=True)
class SimpleCommand:
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[Op, Word]] = field(default_factory=list)


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _expansion(command: str, i: int) -> str | None:
    """If ``command[i]`` is ``$`` starting an expansion, a short description of it."""
    nxt = command[i + 1] if i + 1 < len(command) else ""
    if nxt == "(":
        return "command substitution $(…)"
    if nxt == "{":
        return "parameter expansion ${…}"
    if nxt in ("'", '"'):
        return f"quoting ${nxt}…{nxt}"
    if nxt and (nxt.isalpha() or nxt == "_"):
        j = i + 1
        while j < len(command) and _is_name_char(command[j]):
            j += 1
        return f"variable expansion ${command[i + 1 : j]}"
    if nxt in _SPECIAL_PARAMS:
        return f"variable expansion ${nxt}"
    return None


def scan(command: str, *, shell: bool) -> list[Token]:
    """Split ``command`` into words and operators; raise :class:`Refused` on forbidden syntax.

    ``shell`` selects the rules: without shell features every operator, unquoted glob and
    expansion is refused; with them operators are returned for the policy to check.
    """
    tokens: list[Token] = []
    value: list[str] = []
    raw_start = -1
    in_word = False
    glob = tilde = False
    i = 0
    n = len(command)

    def strict_refuse(what: str) -> None:
        if not shell:
            raise Refused(
                f"Shell syntax not allowed: {what} (pipes, redirects, command lists and globs "
                "need agent.tools.bash.shell-features-enabled)"
            )

    def end_word(at: int) -> None:
        nonlocal value, in_word, glob, tilde, raw_start
        if in_word:
            tokens.append(Word("".join(value), command[raw_start:at], glob, tilde))
        value, in_word, glob, tilde, raw_start = [], False, False, False, -1

    def start_word(at: int) -> None:
        nonlocal in_word, raw_start
        if not in_word:
            in_word, raw_start = True, at

    while i < n:
        ch = command[i]
        if ch in " \t":
            end_word(i)
            i += 1
            continue
        if ch == "\n":
            strict_refuse("a newline")
            end_word(i)
            tokens.append(Op("\n"))
            i += 1
            continue
        if ord(ch) < 32 or ord(ch) == 127:
            raise Refused(f"Control character not allowed: {ch!r}")
        if ch == "#" and not in_word and shell:
            # A comment runs to the end of the line.
            while i < n and command[i] != "\n":
                i += 1
            continue
        if ch == "\\":
            start_word(i)
            if i + 1 < n:
                if command[i + 1] == "\n":
                    strict_refuse("a line continuation")
                else:
                    value.append(command[i + 1])
                i += 2
            else:
                value.append("\\")
                i += 1
            continue
        if ch == "'":
            start_word(i)
            end = command.find("'", i + 1)
            if end < 0:
                raise Refused("Unterminated single quote")
            value.append(command[i + 1 : end])
            i = end + 1
            continue
        if ch == '"':
            start_word(i)
            i += 1
            while True:
                if i >= n:
                    raise Refused("Unterminated double quote")
                c = command[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and command[i + 1] in '$`"\\\n':
                    if command[i + 1] != "\n":
                        value.append(command[i + 1])
                    i += 2
                    continue
                if c == "`":
                    raise Refused("Command substitution not allowed: `…`")
                if c == "$" and (what := _expansion(command, i)):
                    raise Refused(f"Not allowed: {what}")
                value.append(c)
                i += 1
            continue
        if ch == "`":
            raise Refused("Command substitution not allowed: `…`")
        if ch == "$" and (what := _expansion(command, i)):
            raise Refused(f"Not allowed: {what}")
        if ch in "<>" and i + 1 < n and command[i + 1] == "(":
            raise Refused(f"Process substitution not allowed: {ch}(…)")
        if command.startswith("<<", i):
            raise Refused("Here-documents and here-strings are not allowed: <<")
        op = next((o for o in _OPERATORS if command.startswith(o, i)), None)
        if op is not None:
            strict_refuse(repr(op))
            fd = ""
            # "2>" : a word made only of digits right before a redirection is its fd.
            if op in REDIRECT_OPS and in_word and raw_start >= 0 and command[raw_start:i].isdigit():
                fd = command[raw_start:i]
                value, in_word, glob, tilde, raw_start = [], False, False, False, -1
            end_word(i)
            tokens.append(Op(op, fd))
            i += len(op)
            continue
        if ch in "*?[" and (ch != "[" or shell):
            if not shell:
                raise Refused(
                    f"Glob patterns are not expanded without shell features: {ch!r} "
                    "(quote it to pass it literally)"
                )
            glob = True
        if ch in "{}" and shell:
            raise Refused(f"Brace expansion and command groups are not allowed: {ch!r}")
        if ch == "~" and not in_word and shell:
            tilde = True
        start_word(i)
        value.append(ch)
        i += 1
    end_word(n)
    return tokens


def split_commands(tokens: list[Token]) -> list[SimpleCommand]:
    """Group tokens into simple commands; refuse a redirection that lacks its target."""
    commands: list[SimpleCommand] = []
    current = SimpleCommand()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, Op) and tok.text in CONTROL_OPS:
            if current.words or current.redirects:
                commands.append(current)
            current = SimpleCommand()
        elif isinstance(tok, Op):
            target = tokens[i + 1] if i + 1 < len(tokens) else None
            if not isinstance(target, Word):
                raise Refused(f"Redirection {tok.fd}{tok.text} has no target")
            current.redirects.append((tok, target))
            i += 1
        else:
            current.words.append(tok)
        i += 1
    if current.words or current.redirects:
        commands.append(current)
    return commands
