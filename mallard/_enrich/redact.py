"""PII redaction: personal data sent by mistake is replaced by a fixed marker before it is stored.

Applied (unless ``redact_pii`` is off) to the page path, the UTM values, the stored referrer and
every key and value of ``props``. Each rule replaces what it finds with a marker, so values still
group (``/users/[email]``):

* ``[email]`` — an e-mail address: characters of ``A–Z a–z 0–9 _ . ! # $ % ' * + ^ ` { | } ~ -``
  (and other letters), ``@`` or its URL encoding ``%40``, then a domain of dot-separated labels
  ending in a top-level domain of two or more letters (or ``xn--…``).
* ``[card]`` — a payment card number: 13 to 19 digits that pass the Luhn check and start with 2–6
  (Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay, Maestro), either contiguous
  or in groups (the first of 4 digits, the others of 3–6) separated by one space or one dash, the
  same separator throughout. Not part of a longer run of letters or digits.
* ``[phone]`` — a telephone number in one of three forms, not part of a longer run of letters or
  digits: international, ``+`` then 8–15 digits in groups separated by one space, dot or dash, with
  an optional parenthesised group (``+44 (0)20 7946 0958``, ``+4915112345678``); North American,
  ``555-123-4567``, ``555.123.4567``, ``555 123 4567``, ``(555) 123-4567``, optionally after ``1-``;
  national with a trunk ``0``, 9–15 digits in at least two groups separated by one space, dot or
  dash, the same separator throughout (``030 1234567``, ``06 12 34 56 78``, ``(030) 1234567``).
  Digits without a ``+``, parentheses or separators (ids, prices, years), dates (``2024-05-12``,
  ``05.12.2024``), versions and IPv4 addresses do not match.
* ``[redacted]`` — the value of a secret-looking URL parameter (after ``?``, ``&``, ``;`` or ``#``,
  or at the start of the text): a name of :data:`SECRET_PARAMS` or one ending in ``token``,
  ``secret``, ``password`` or ``passwd``, case-insensitive, ``-`` and ``_`` alike; the user-info of a
  URL (``https://user:pass@host``); and in ``props`` the value of a key with such a name.
* ``[redacted]`` — whatever an extra pattern (``redact_extra_patterns``, RE2 syntax, linear time)
  matches; these run after the built-in rules.

Cheap pre-checks keep ordinary text from paying for the rules: nothing runs unless the text holds an
``@``/``%40``, an ``=`` or eight digits close together (or extra patterns are configured).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Final

import orjson
import re2

from .._errors import ConfigurationError

__all__ = ["KINDS", "MARKERS", "SECRET_PARAMS", "Redacted", "Redactor", "compile_patterns",
           "luhn_valid"]

#: Kinds of redaction, the values of the ``kind`` label of ``mallard_pii_redactions_total``.
KINDS: Final = ("email", "card", "phone", "secret", "custom")
MARKERS: Final = {"email": "[email]", "card": "[card]", "phone": "[phone]", "secret": "[redacted]",
                  "custom": "[redacted]"}

#: URL parameter (and props key) names whose values are redacted, compared case-insensitively with
#: ``-`` and ``_`` alike. ``code`` (OAuth authorisation codes, but also promo and country codes) is
#: not among them: add it with ``redact_extra_params``.
SECRET_PARAMS: Final = (
    "token", "access_token", "refresh_token", "id_token", "auth_token", "oauth_token",
    "oauth_verifier", "auth", "authorization", "password", "passwd", "pwd", "secret",
    "client_secret", "key", "api_key", "apikey", "session", "sessionid", "session_id", "sid",
    "jsessionid", "phpsessid", "signature", "sig", "x_amz_signature", "x_amz_credential",
    "x_amz_security_token", "otp",
)
_SECRET_SUFFIXES: Final = ("token", "secret", "password", "passwd")
_PARAM_NAME: Final = re.compile(r"[^\s=&#;?]{1,64}")

#: A redaction result: the new text and the kinds of what was replaced (one entry per replacement).
Redacted = tuple[str, tuple[str, ...]]

# -- the rules ---------------------------------------------------------------------------------------
# Every quantifier is bounded or delimited, so no rule backtracks more than linearly.
_EDGE_L: Final = r"(?<![0-9A-Za-z])"
_EDGE_R: Final = r"(?![0-9A-Za-z])"
# In every card or phone number: 8 digits, at most two other characters between two of them.
_NUMBERS: Final = re.compile(r"[0-9](?:[^0-9]{0,2}[0-9]){7}")
_PARAM: Final = re.compile(r"(?:(?<=[?&;#])|^)([^=&#;?\s]{1,64})=([^&#;?\s]+)")
_USERINFO: Final = re.compile(r"(?<=://)[^/?#@\s]{1,256}(?=@)")
_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False
# RE2, not re: an e-mail's local part and labels are long runs that a backtracking engine would try
# from every position (22 ms for a 4 KB props value of "%40%40…"); RE2 is linear (0.03 ms). The
# local part may be empty, except after a redacted user-info (checked by _email: RE2 has no
# lookbehind). \pL\pN: the letters and digits of every script, as re's \w.
# Runs are unbounded here: bounded repeats of Unicode classes make RE2's automaton too large for its
# DFA (and a longer local part is redacted whole, which is fine).
_EMAIL: Final = re2.compile(
    r"[\pL\pN_.!#$%'*+^`{|}~\-]*(?:@|%40)[\pL\pN_\-]+(?:\.[\pL\pN_\-]+)*"
    r"\.(?:\pL\pL+|xn--[\pL\pN_\-]+)", _RE2_OPTIONS)
_CARD: Final = re.compile(  # not after "+": that is a phone number
    r"(?<![0-9A-Za-z+])(?:[2-6][0-9]{12,18}|[2-6][0-9]{3}(?P<sep>[ \-])[0-9]{3,6}(?:(?P=sep)[0-9]{3,6}){1,4})"
    + _EDGE_R)
_PHONE: Final = re.compile(
    _EDGE_L + r"(?:"
    r"\+[0-9]{1,15}(?:(?:[ .\-]|\s?\([0-9]{1,4}\)\s?)[0-9]{1,12}){0,8}"  # international
    r"|(?:1[ .\-])?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}"  # North American
    r"|0[0-9]{1,4}(?P<sep>[ .\-])[0-9]{2,8}(?:(?P=sep)[0-9]{2,8}){0,4}"  # national, trunk 0
    r"|\(0[0-9]{1,4}\) ?[0-9]{2,8}(?:[ \-][0-9]{2,8}){0,4}"
    r")" + _EDGE_R)
_DIGIT: Final = re.compile(r"[0-9]")


def _hint(text: str) -> bool:
    """False when no built-in rule can match ``text`` (most text): the rules then need not run."""
    return "@" in text or "=" in text or "%40" in text or _NUMBERS.search(text) is not None


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn check (as payment card numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def compile_patterns(patterns: Iterable[str]) -> re2._Regexp | None:
    """One RE2 regex matching any of ``patterns`` (None for none).

    Raises:
        ConfigurationError: naming the first pattern RE2 rejects.
    """
    options = re2.Options()
    options.log_errors = False
    parts = []
    for pattern in patterns:
        try:
            re2.compile(pattern, options)
        except re2.error as exc:
            detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
                exc.args[0], bytes) else str(exc)
            raise ConfigurationError(
                f"redact_extra_patterns: {pattern!r} is not a valid RE2 regular expression "
                f"({detail}). RE2 has no backreferences or lookaround.") from None
        parts.append(f"(?:{pattern})")
    return re2.compile("|".join(parts), options) if parts else None


def _normal_name(name: str) -> str:
    """``Access-Token`` → ``access_token``; ``user[password]`` → ``password``."""
    name = name.lower().replace("-", "_")
    if name.endswith("]"):
        name = name[:-1].rpartition("[")[2]
    return name


class Redactor:
    """The redaction rules of one configuration. Thread-safe; pure apart from a bounded cache.

    Args:
        extra_params: parameter names redacted besides :data:`SECRET_PARAMS`.
        extra_patterns: regular expressions (RE2 syntax) whose matches are redacted.

    Raises:
        ConfigurationError: for a bad parameter name or pattern.
    """

    def __init__(self, *, extra_params: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        for name in extra_params:
            if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
                raise ConfigurationError(
                    f"redact_extra_params: {name!r} is not a parameter name (1-64 characters, no "
                    f"whitespace or any of = & # ; ?).")
        self._names = frozenset(_normal_name(n) for n in (*SECRET_PARAMS, *extra_params))
        self._custom = compile_patterns(extra_patterns)
        # Bounded caches: page paths, referrers, props and their keys repeat.
        #: :meth:`text`, cached.
        self.text_cached: Callable[[str], Redacted | None] = lru_cache(maxsize=16_384)(self.text)
        #: :meth:`props`, cached (fewer entries: a props text may be 4 KB).
        self.props_cached: Callable[[str], Redacted | None] = lru_cache(maxsize=2048)(self.props)
        #: Whether values under this parameter or props key name are redacted (cached).
        self.is_secret: Callable[[str], bool] = lru_cache(maxsize=4096)(self._is_secret)

    def text(self, text: str) -> Redacted | None:
        """``text`` redacted and the kinds replaced, or None when nothing was (the common case)."""
        custom = self._custom
        if custom is None and not _hint(text):
            return None
        found: list[str] = []
        if "=" in text:
            text = _PARAM.sub(self._param_replacer(found), text)
        if "//" in text and "@" in text:
            text = _USERINFO.sub(_replacer("secret", found), text)
        if "@" in text or "%40" in text:
            text = _EMAIL.sub(_email(text, found), text)
        if _NUMBERS.search(text):
            text = _CARD.sub(lambda m: _card(m, found), text)
            text = _PHONE.sub(lambda m: _phone(m, found), text)
        if custom is not None and custom.search(text):
            text = custom.sub(_replacer("custom", found), text)
        return (text, tuple(found)) if found else None

    def props(self, text: str) -> Redacted | None:
        """A props JSON object (canonical text) with every key and value redacted, or None."""
        data = orjson.loads(text)
        if self._custom is None and not _hint(text) and not self._has_secret_key(data):
            return None
        found: list[str] = []
        data = self._value(data, found)
        if not found:
            return None
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode(), tuple(found)

    def _is_secret(self, name: str) -> bool:
        name = _normal_name(name)
        return name in self._names or name.endswith(_SECRET_SUFFIXES)

    def _has_secret_key(self, value: Any) -> bool:
        if isinstance(value, dict):
            return any(self.is_secret(k) or self._has_secret_key(v) for k, v in value.items())
        if isinstance(value, list):
            return any(self._has_secret_key(item) for item in value)
        return False

    def _param_replacer(self, found: list[str]) -> Callable[[re.Match[str]], str]:
        is_secret, marker = self.is_secret, MARKERS["secret"]

        def replace(match: re.Match[str]) -> str:
            name, value = match.group(1), match.group(2)
            if value == marker or not is_secret(name):
                return match.group()
            found.append("secret")
            return f"{name}={marker}"

        return replace

    def _value(self, value: Any, found: list[str]) -> Any:
        if isinstance(value, str):
            done = self.text(value)
            if done is None:
                return value
            found.extend(done[1])
            return done[0]
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                item = (self._secret_value if self.is_secret(key) else self._value)(item, found)
                out[self._value(key, found)] = item  # keys that redact alike: the last one wins
            return out
        if isinstance(value, list):
            return [self._value(item, found) for item in value]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
            done = self.text(str(value))  # a card number sent as a JSON number
            if done is not None:
                found.extend(done[1])
                return done[0]
        return value

    def _secret_value(self, value: Any, found: list[str]) -> Any:
        """The value of a secret-looking props key: its strings and numbers (in lists too) redacted."""
        if isinstance(value, list):
            return [self._secret_value(item, found) for item in value]
        if isinstance(value, dict):
            return self._value(value, found)
        if value is None or isinstance(value, bool) or value == MARKERS["secret"]:
            return value
        found.append("secret")
        return MARKERS["secret"]


def _replacer(kind: str, found: list[str]) -> Callable[[Any], str]:
    """A substitution that replaces each match by the kind's marker and counts it."""
    marker = MARKERS[kind]

    def replace(match: Any) -> str:  # an re or re2 match
        if match.group() == marker:  # already redacted (text redacted twice)
            return marker
        found.append(kind)
        return marker

    return replace


def _email(text: str, found: list[str]) -> Callable[[Any], str]:
    """The e-mail substitution over ``text``: as :func:`_replacer`, but an address with an empty local
    part right after a redacted user-info (``https://[redacted]@host``) is the URL's host, kept."""
    count = _replacer("email", found)

    def replace(match: Any) -> str:  # an re2 match
        start = match.start()
        if start >= 10 and text.startswith("[redacted]", start - 10) and match.group()[:1] in "@%":
            return str(match.group())
        return count(match)

    return replace


def _card(match: re.Match[str], found: list[str]) -> str:
    text = match.group()
    sep = match.group("sep")
    groups = text.split(sep) if sep else [text]
    # The longest run of whole groups that is a valid number (a grouped card may be followed by more
    # digit groups, e.g. an expiry year).
    for n in range(len(groups), 0, -1):
        digits = "".join(groups[:n])
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append("card")
            end = sum(map(len, groups[:n])) + n - 1
            return MARKERS["card"] + text[end:]
    return text


def _phone(match: re.Match[str], found: list[str]) -> str:
    text = match.group()
    digits = len(_DIGIT.findall(text))
    if text.startswith("+"):
        ok = 8 <= digits <= 15
    elif text.startswith("0") or text.startswith("(0"):
        ok = 9 <= digits <= 15
    else:
        ok = True  # North American: 10 or 11 digits by construction
    if not ok:
        return text
    found.append("phone")
    return MARKERS["phone"]
