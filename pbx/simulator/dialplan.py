"""The three string parsers a FastAGI command goes through inside Asterisk.

1. ``agi_args``: res_agi's ``parse_args`` splits the command line on blanks, honours double
   quotes and eats one backslash (``\\\\,`` on the wire becomes ``\\,``).
2. ``app_args``: ``AST_STANDARD_APP_ARGS`` splits application data on unescaped commas outside
   parentheses and quotes, then drops the quotes and escaping backslashes (``\\,`` -> ``,``).
3. ``substitute``: ``${NAME}``, ``${FUNC(args)}`` and ``${X:offset:length}`` expansion, as
   ``GET FULL VARIABLE`` does. Unknown names expand to nothing, like in the dialplan.

They are written from the C code's behaviour, independently of the daemon's own parsers.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["agi_args", "app_args", "substitute"]

_MAX_AGI_ARGS = 128  # res_agi MAX_ARGS


def agi_args(line: str) -> list[str]:
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:  # an opening quote after blanks starts a word, even ""
                cur = []
                args.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1] = "".join(cur)
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if cur is None:
            if len(args) >= _MAX_AGI_ARGS - 1:
                continue  # Asterisk logs "Too many arguments, truncating"
            cur = []
            args.append("")
        cur.append(ch)
    if cur is not None:
        args[-1] = "".join(cur)
    return args


def app_args(data: str, max_args: int = 0) -> list[str]:
    """Split application data; with ``max_args`` the last field keeps the unsplit remainder."""
    out: list[str] = []
    i, n = 0, len(data)
    while i < n and (not max_args or len(out) < max_args - 1):
        field: list[str] = []
        paren = 0
        quote = False
        while i < n:
            ch = data[i]
            i += 1
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(0, paren - 1)
            elif ch == '"':
                quote = not quote
                continue
            elif ch == "\\":
                if i < n:  # keep the escaped character literally, drop the backslash
                    field.append(data[i])
                    i += 1
                continue
            elif ch == "," and not paren and not quote:
                break
            field.append(ch)
        out.append("".join(field))
    if i < n:
        out.append(data[i:])
    elif data.endswith(",") and (not max_args or len(out) < max_args):
        out.append("")  # "a,b," has an empty third argument
    return out


def substitute(expr: str, read: Callable[[str], str | None]) -> str:
    """Expand every ``${...}`` in ``expr``; ``read`` returns a variable's or function's value."""
    out: list[str] = []
    i = 0
    while i < len(expr):
        if expr.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(expr) and depth:
                if expr.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                if expr[j] == "{":
                    depth += 1
                elif expr[j] == "}":
                    depth -= 1
                j += 1
            if depth:  # unterminated: Asterisk copies it through
                out.append(expr[i:])
                break
            out.append(_lookup(substitute(expr[i + 2 : j - 1], read), read))
            i = j
        else:
            out.append(expr[i])
            i += 1
    return "".join(out)


def _lookup(name: str, read: Callable[[str], str | None]) -> str:
    offset, length = 0, None
    if not name.endswith(")") and ":" in name:  # ${VAR:offset[:length]}
        name, _, spec = name.partition(":")
        parts = spec.split(":")
        try:
            offset = int(parts[0] or 0)
            length = int(parts[1]) if len(parts) > 1 and parts[1] else None
        except ValueError:
            offset, length = 0, None
    value = read(name) or ""
    value = value[offset:]  # a negative offset counts from the end, as in Python
    return value if length is None else value[:length]
