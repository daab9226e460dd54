"""Secrets out of everything the harness shows: logs, timelines, reports, reprs.

One rule for what a secret is, used everywhere: a key is secret when its name says password, passwd, secret
or token (`is_secret_key`: `wifi_password`, `broker_password`, `ota_token` ...). A `Masker` replaces

- every known secret value (what a board was provisioned with, a password given on the command line)
  wherever it shows up (`mask_secrets`; values shorter than `SHORT_SECRET` only as whole words, or "1" would
  hide every digit), and
- the values of secret keys even when the value is not known: in JSON, `key=value`, `config set
  wifi_password ...`, and the password in a URL's user info.

`Secret` is a password that shows as `********` wherever Python prints it, and `TYPED_SECRET` finds the
value in a console line that sets a secret key, so a board can learn the secrets typed into it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MASK = "********"
SHORT_SECRET = 4  # shorter known secrets are masked only as whole words

_KEY_WORDS = r"password|passwd|secret|token"
_KEY = rf"[\w-]*(?:{_KEY_WORDS})[\w-]*"
_SECRET_KEY = re.compile(_KEY, re.IGNORECASE)
_KEY_WORD_LIST = tuple(_KEY_WORDS.split("|"))


def _has_key_word(text: str) -> bool:
    lowered = text.casefold()  # four substring tests cost a third of one case-blind regex search
    return any(word in lowered for word in _KEY_WORD_LIST)


def _has_user_info(text: str) -> bool:
    return "://" in text and "@" in text


# The patterns grouped under a quick test of what they cannot match without: most lines (serial logs, events)
# pass none, and the quick tests cost less than the patterns (Masker.text runs on every timeline entry). Masking
# only replaces values with MASK, so a line that fails a test before the substitutions fails it after them too.
_PATTERNS: tuple[tuple[Callable[[str], bool], tuple[re.Pattern[str], ...]], ...] = (
    (_has_key_word, (
        # "wifi_password": "a b" (a JSON string, spaces and escapes included)
        re.compile(rf"""(["']{_KEY}["']\s*:\s*")((?:[^"\\]|\\.)*)(")""", re.IGNORECASE),
        # password=x, broker_password: x, ?token=x&, wifi_password='x'
        re.compile(rf"""(\b{_KEY}["']?\s*[:=]\s*["']?)(?!\*{{8}})([^\s"',;&}}]+)()""", re.IGNORECASE),
        # config set broker_password x, wifi_password x (a key with a prefix, then a space)
        re.compile(rf"""(\b\w+_(?:{_KEY_WORDS})\s+)(?!\*{{8}})([^\s"',;&}}]+)()""", re.IGNORECASE),
    )),
    # mqtt://user:pass@host
    (_has_user_info, (re.compile(r"""(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)""", re.IGNORECASE),)),
)
# `config set <secret key> <value>` typed on a console: group 1 is the value
TYPED_SECRET = re.compile(rf"^\s*config\s+set\s+{_KEY}\s+(\S+)", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    return bool(_SECRET_KEY.fullmatch(str(key)))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each known secret value replaced by MASK (the longest first), nothing else touched."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            if len(secret) >= SHORT_SECRET:
                text = text.replace(secret, MASK)
            else:
                text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
    return text


def _masked(match: re.Match[str]) -> str:
    return match.group(1) + MASK + match.group(3)


@dataclass
class Masker:
    """Hides secrets in text and data. `secrets` are known values (e.g. the provisioned passwords)."""

    secrets: set[str] = field(default_factory=set)

    def add(self, *values: object) -> None:
        self.secrets.update(str(v) for v in values if v is not None and str(v) and str(v) != MASK)

    def add_from_settings(self, settings: dict[str, object]) -> None:
        """Registers the values of secret keys (`wifi_password`, `broker_password`, ...)."""
        self.add(*(v for k, v in settings.items() if is_secret_key(k)))

    def text(self, text: str) -> str:
        text = mask_secrets(text, self.secrets)
        for may_match, patterns in _PATTERNS:
            if may_match(text):
                for pattern in patterns:
                    text = pattern.sub(_masked, text)
        return text

    def data(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: MASK if is_secret_key(k) else self.data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.data(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    return Masker(set(secrets)).text(text)


def mask_data(data: Any, secrets: Iterable[str] = ()) -> Any:
    return Masker(set(secrets)).data(data)


class Secret(str):
    """A password: the value itself where it is used, `********` wherever it is shown (reprs,
    `--showlocals` tracebacks, assertion messages)."""

    def __repr__(self) -> str:
        return f"'{MASK}'"
