"""A `Reply` as platform messages: escaped text, output in code blocks, split on line boundaries to fit the platform's limit.

One place for every platform, so skill output can never ping `@everyone`,
close its code block early or break the markup of the message around it.

Every escape here works character by character (escape(a + b) == escape(a) +
escape(b)), which lets the splitter price each line once instead of
re-escaping whole messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bot.flow import Reply


@dataclass(frozen=True)
class Style:
    limit: int  # per message, in UTF-16 code units (what Telegram counts; never fewer than characters)
    text: Callable[[str], str]  # escape for plain text
    code: Callable[[str], str]  # escape for inside a code block
    block_open: str
    block_close: str


def size(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# Control characters but tab and newline (C0, DEL, C1) are shown as \xNN: skill output or a quoted message can never
# drive a terminal (ESC sequences) or cut a string (NUL). Lone surrogates, which no platform can encode, become U+FFFD.
_VISIBLE = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
_VISIBLE.update(dict.fromkeys(range(0xD800, 0xE000), "\ufffd"))


def visible(text: str) -> str:
    """`text` with nothing a terminal or a platform would act on or choke on; character by character, like the escapes."""
    return text.translate(_VISIBLE)


def render(reply: Reply, style: Style) -> list[str]:
    """The messages that carry `reply`, in order, each within `style.limit`."""
    parts = [style.text(piece) for piece in _split(visible(reply.text), style.limit, style.text) if piece.strip()]
    code = visible(reply.code or "").rstrip("\n")
    if code.strip():
        budget = style.limit - size(style.block_open) - size(style.block_close)
        # The first block shares the message with the text when a useful part of it fits there.
        beside_text = budget - size(parts[-1]) - 1 if parts else budget
        first = beside_text if beside_text >= budget // 4 else budget
        parts += [style.block_open + style.code(piece) + style.block_close for piece in _split(code, budget, style.code, first)]
    return _pack(parts, style.limit)


def _split(raw: str, budget: int, escape: Callable[[str], str], first: int | None = None) -> list[str]:
    """Group lines of `raw` into pieces whose escaped size fits `budget` (`first` for the first piece); a line too long alone is cut."""
    pieces: list[str] = []
    lines: list[str] = []
    used = 0
    room = budget if first is None else first
    for line in _fitting_lines(raw, budget, escape):
        cost = size(escape(line))
        if lines and used + 1 + cost > room:
            pieces.append("\n".join(lines))
            lines, used, room = [], 0, budget
        used += cost + (1 if lines else 0)
        lines.append(line)
    if lines:
        pieces.append("\n".join(lines))
    return pieces


def _fitting_lines(raw: str, budget: int, escape: Callable[[str], str]) -> Iterator[str]:
    for line in raw.split("\n"):
        if size(escape(line)) <= budget:
            yield line
            continue
        start, used = 0, 0
        for i, char in enumerate(line):
            cost = size(escape(char))
            if used + cost > budget:
                yield line[start:i]
                start, used = i, 0
            used += cost
        yield line[start:]


def _pack(parts: list[str], limit: int) -> list[str]:
    """Join consecutive parts into as few messages as fit, keeping their order."""
    messages: list[str] = []
    for part in parts:
        if messages and size(messages[-1]) + 1 + size(part) <= limit:
            messages[-1] += "\n" + part
        else:
            messages.append(part)
    return messages


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Telegram with parse_mode=HTML: only &, < and > are special, and Telegram has no @everyone.
TELEGRAM = Style(4096, _html, _html, "<pre>", "</pre>")

# Slack mrkdwn: &, < and > are the only escapes Slack defines, and <!here>, <!channel>, <@U…> need a literal "<".
# A zero-width space after each backtick keeps output from closing its ``` block.
_ZWSP = "\u200b"


def _slack_code(text: str) -> str:
    return _html(text).replace("`", "`" + _ZWSP)


# Slack cuts messages above 40 000 characters but asks for at most 4 000 per message.
SLACK = Style(4000, _html, _slack_code, "```\n", "\n```")

# Discord Markdown: backslash-escape the characters that format; "@" gets a zero-width space so @everyone and
# @here stay text even where allowed_mentions would let them through.
_DISCORD_MARKDOWN = set("\\*_~`|>#-[]()")


def _discord_text(text: str) -> str:
    return "".join("\\" + c if c in _DISCORD_MARKDOWN else "@" + _ZWSP if c == "@" else c for c in text)


def _discord_code(text: str) -> str:
    return text.replace("`", "`" + _ZWSP)


DISCORD = Style(2000, _discord_text, _discord_code, "```\n", "\n```")
