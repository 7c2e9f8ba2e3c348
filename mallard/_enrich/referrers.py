"""Referrer URL → visit source (``Google``, ``Reddit``, ``news.example``…) and medium.

The referrer's host is lower-cased and stripped of userinfo, port, a trailing dot and a leading
``www.``; a self-referral or a missing/unparsable referrer is ``(direct)``. The host is then matched
against mallard's own table by exact host or dot-bounded parent domain, the most specific entry
winning (``mail.google.com`` → Gmail, ``notgoogle.com`` → nothing), after folding a few brands'
country domains onto ``.com`` (``google.co.uk``, ``yandex.com.tr``); an unknown host is its own
source. ``android-app://<package>`` referrers are matched by app package instead.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, Literal

_Medium = Literal["search", "social", "video", "shopping", "ai", "email"]

DIRECT: Final = "(direct)"

# (source name, medium, hosts). A host also covers its subdomains unless a longer entry exists.
# Hosts are written lower-case without "www."; brand country domains are folded (see below).
_SOURCES: Final[tuple[tuple[str, _Medium, tuple[str, ...]], ...]] = (
    # Search engines
    ("Google", "search", ("google.com",)),
    ("Google News", "search", ("news.google.com",)),
    ("Bing", "search", ("bing.com",)),
    ("Yahoo", "search", ("yahoo.com",)),
    ("Yahoo Japan", "search", ("yahoo.co.jp",)),
    ("DuckDuckGo", "search", ("duckduckgo.com",)),
    ("Ecosia", "search", ("ecosia.org",)),
    ("Startpage", "search", ("startpage.com",)),
    ("Brave Search", "search", ("search.brave.com",)),
    ("Baidu", "search", ("baidu.com",)),
    ("Yandex", "search", ("yandex.com", "ya.ru")),
    ("Naver", "search", ("naver.com",)),
    ("Qwant", "search", ("qwant.com",)),
    ("Seznam", "search", ("seznam.cz",)),
    ("Kagi", "search", ("kagi.com",)),
    ("Sogou", "search", ("sogou.com",)),
    ("Mojeek", "search", ("mojeek.com",)),
    # Social networks, communities, messaging
    ("Facebook", "social", ("facebook.com", "fb.com", "fb.me", "fb.watch")),
    ("Instagram", "social", ("instagram.com", "instagr.am")),
    ("Threads", "social", ("threads.net", "threads.com")),
    ("Twitter", "social", ("twitter.com", "x.com", "t.co")),
    ("LinkedIn", "social", ("linkedin.com", "lnkd.in")),
    ("Reddit", "social", ("reddit.com", "redd.it")),
    ("Hacker News", "social", ("news.ycombinator.com",)),
    ("GitHub", "social", ("github.com",)),
    ("GitLab", "social", ("gitlab.com",)),
    ("YouTube", "video", ("youtube.com", "youtu.be")),
    ("Pinterest", "social", ("pinterest.com", "pin.it")),
    ("TikTok", "social", ("tiktok.com",)),
    ("Mastodon", "social", (
        "mastodon.social", "mastodon.online", "mastodon.world", "mstdn.social", "mas.to",
        "fosstodon.org", "hachyderm.io", "infosec.exchange", "chaos.social", "techhub.social",
    )),
    ("Bluesky", "social", ("bsky.app",)),
    ("Substack", "social", ("substack.com",)),
    ("Medium", "social", ("medium.com",)),
    ("Stack Overflow", "social", ("stackoverflow.com",)),
    ("Telegram", "social", ("t.me", "telegram.me", "telegram.org")),
    ("WhatsApp", "social", ("whatsapp.com", "wa.me")),
    ("Discord", "social", ("discord.com", "discord.gg", "discordapp.com")),
    ("Slack", "social", ("slack.com", "slack-redir.net")),
    ("VK", "social", ("vk.com", "vk.ru", "vkontakte.ru")),
    ("Odnoklassniki", "social", ("ok.ru", "odnoklassniki.ru")),
    ("Weibo", "social", ("weibo.com", "weibo.cn", "t.cn")),
    ("Quora", "social", ("quora.com",)),
    ("Tumblr", "social", ("tumblr.com", "t.umblr.com")),
    ("Product Hunt", "social", ("producthunt.com",)),
    ("Lobsters", "social", ("lobste.rs",)),
    ("Dev.to", "social", ("dev.to",)),
    # Video platforms
    ("Vimeo", "video", ("vimeo.com",)),
    ("Twitch", "video", ("twitch.tv",)),
    ("Dailymotion", "video", ("dailymotion.com",)),
    # Shopping
    ("Amazon", "shopping", ("amazon.com", "amazon.de", "amazon.co.uk", "amazon.fr", "amazon.es",
                            "amazon.it", "amazon.ca", "amazon.co.jp", "amazon.in", "amazon.nl",
                            "amazon.com.au", "amazon.com.br", "amazon.com.mx")),
    ("eBay", "shopping", ("ebay.com", "ebay.de", "ebay.co.uk", "ebay.fr", "ebay.it", "ebay.es",
                          "ebay.ca", "ebay.com.au")),
    ("Etsy", "shopping", ("etsy.com",)),
    ("Shopify", "shopping", ("shopify.com", "shop.app")),
    ("Walmart", "shopping", ("walmart.com",)),
    ("AliExpress", "shopping", ("aliexpress.com", "aliexpress.us")),
    ("Temu", "shopping", ("temu.com",)),
    ("Mercado Libre", "shopping", ("mercadolibre.com", "mercadolivre.com.br")),
    ("Google Shopping", "shopping", ("shopping.google.com",)),
    # AI assistants
    ("ChatGPT", "ai", ("chatgpt.com", "chat.openai.com")),
    ("Perplexity", "ai", ("perplexity.ai",)),
    ("Claude", "ai", ("claude.ai",)),
    ("Gemini", "ai", ("gemini.google.com", "bard.google.com")),
    ("NotebookLM", "ai", ("notebooklm.google.com",)),
    ("Copilot", "ai", ("copilot.microsoft.com",)),
    ("DeepSeek", "ai", ("chat.deepseek.com",)),
    ("Mistral Le Chat", "ai", ("chat.mistral.ai",)),
    ("Grok", "ai", ("grok.com",)),
    ("Meta AI", "ai", ("meta.ai",)),
    ("Phind", "ai", ("phind.com",)),
    ("You.com", "ai", ("you.com",)),
    ("Poe", "ai", ("poe.com",)),
    ("Character.AI", "ai", ("character.ai",)),
    ("Duck.ai", "ai", ("duck.ai",)),
    # Webmail
    ("Gmail", "email", ("mail.google.com",)),
    ("Outlook", "email", (
        "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.live.com",
    )),
    ("Yahoo Mail", "email", ("mail.yahoo.com", "mail.yahoo.net")),
    ("Proton Mail", "email", ("mail.proton.me", "mail.protonmail.com")),
    ("Yandex Mail", "email", ("mail.yandex.com",)),
)

# Android app packages (``android-app://<package>``) → source name from the table above. A
# package also covers its dot-bounded extensions (``com.whatsapp`` → ``com.whatsapp.w4b``).
_APPS: Final[tuple[tuple[str, str], ...]] = (
    ("com.google.android.googlequicksearchbox", "Google"),
    ("com.google.android.apps.searchlite", "Google"),
    ("com.microsoft.bing", "Bing"),
    ("com.duckduckgo.mobile.android", "DuckDuckGo"),
    ("ru.yandex.searchplugin", "Yandex"),
    ("com.nhn.android.search", "Naver"),
    ("com.facebook.katana", "Facebook"),
    ("com.facebook.lite", "Facebook"),
    ("com.facebook.orca", "Facebook"),
    ("com.instagram.android", "Instagram"),
    ("com.instagram.barcelona", "Threads"),
    ("com.twitter.android", "Twitter"),
    ("com.linkedin.android", "LinkedIn"),
    ("com.reddit.frontpage", "Reddit"),
    ("com.google.android.youtube", "YouTube"),
    ("com.pinterest", "Pinterest"),
    ("com.zhiliaoapp.musically", "TikTok"),
    ("com.ss.android.ugc.trill", "TikTok"),
    ("org.joinmastodon.android", "Mastodon"),
    ("xyz.blueskyweb.app", "Bluesky"),
    ("com.medium.reader", "Medium"),
    ("org.telegram.messenger", "Telegram"),
    ("com.whatsapp", "WhatsApp"),
    ("com.discord", "Discord"),
    ("com.slack", "Slack"),
    ("com.vkontakte.android", "VK"),
    ("com.sina.weibo", "Weibo"),
    ("com.quora.android", "Quora"),
    ("com.tumblr", "Tumblr"),
    ("com.openai.chatgpt", "ChatGPT"),
    ("ai.perplexity.app.android", "Perplexity"),
    ("com.anthropic.claude", "Claude"),
    ("com.google.android.apps.bard", "Gemini"),
    ("com.microsoft.copilot", "Copilot"),
    ("com.deepseek.chat", "DeepSeek"),
    ("com.google.android.gm", "Gmail"),
    ("com.microsoft.office.outlook", "Outlook"),
    ("com.yahoo.mobile.client.android.mail", "Yahoo Mail"),
    ("ch.protonmail.android", "Proton Mail"),
)

# Shorthands written in utm_source / source / ref tags → source name. Tags ending in "ad" or "ads",
# and "adwords", mark paid traffic (PAID_TAGS).
_TAGS: Final[dict[str, str]] = {
    "fb": "Facebook", "fcb": "Facebook", "fbad": "Facebook", "fbads": "Facebook",
    "fb-ads": "Facebook", "facebook-ads": "Facebook", "facebook_ads": "Facebook",
    "facebook_ad": "Facebook", "ig": "Instagram", "instagram_ads": "Instagram",
    "yt": "YouTube", "yt-ads": "YouTube", "youtube-ads": "YouTube",
    "gads": "Google", "googleads": "Google", "google-ads": "Google", "google_ads": "Google",
    "google ads": "Google", "adwords": "Google", "bing-ads": "Bing", "bingads": "Bing",
    "microsoft-ads": "Bing", "x": "Twitter", "twitter-ads": "Twitter", "li": "LinkedIn",
    "linkedin-ads": "LinkedIn", "linkedin_ads": "LinkedIn", "reddit-ads": "Reddit",
    "tiktokads": "TikTok", "tiktok-ads": "TikTok", "hn": "Hacker News",
    "openai": "ChatGPT", "chat.openai": "ChatGPT",
}
PAID_TAGS: Final = frozenset({"adwords", *(t for t in _TAGS if t.endswith(("ad", "ads")))})

# Brands whose country domains (<brand>.<cc>, <brand>.co.<cc>, <brand>.com.<cc>) fold onto
# <brand>.com before the lookup, so news.google.de is Google News and mail.yandex.ru Yandex Mail.
_COUNTRY_BRANDS: Final = frozenset({"google", "yandex", "pinterest"})

_BY_HOST: Final[dict[str, tuple[str, _Medium]]] = {
    host: (name, medium) for name, medium, hosts in _SOURCES for host in hosts
}
_MEDIUM_OF: Final[dict[str, _Medium]] = {name: medium for name, medium, _ in _SOURCES}
_BY_NAME: Final[dict[str, str]] = {name.lower(): name for name, _, _ in _SOURCES}
_BY_APP: Final[dict[str, tuple[str, _Medium]]] = {
    package: (name, _MEDIUM_OF[name]) for package, name in _APPS
}

# Optional scheme, "//", then the authority up to the first "/", "?", "#" or "\" (browsers treat
# "\" as "/"). Bounded so that junk input cannot make the match or the caches expensive; the
# final look-ahead rejects an authority longer than the bound instead of cutting it.
_URL_RE: Final = re.compile(
    r"[\x00-\x20]*(?:([A-Za-z][A-Za-z0-9+.\-]{0,31}):)?//([^/?#\\]{0,1024})(?![^/?#\\])"
)
# WHATWG forbidden host/domain code points that survive the authority split, plus quotes.
_BAD_HOST_RE: Final = re.compile(r"[\x00-\x20\x7f\"#%'/:<>?@\[\\\]^`{|}]")
_IPV6_RE: Final = re.compile(r"\[[0-9a-f:.]{2,45}\]")


def _valid_port(port: str) -> bool:
    return not port or (len(port) <= 5 and port.isascii() and port.isdigit())


@lru_cache(maxsize=16384)
def _host_of_authority(authority: str) -> str | None:
    """Normalised host of a URL authority (``user@Host:port``), or None when it is not one."""
    if "\t" in authority or "\n" in authority or "\r" in authority:
        authority = authority.replace("\t", "").replace("\n", "").replace("\r", "")
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        host, bracket, rest = hostport.partition("]")
        host = host.lower() + bracket
        if not _IPV6_RE.fullmatch(host) or (rest and not rest.startswith(":")):
            return None
        return host if _valid_port(rest[1:]) else None
    host, _, port = hostport.partition(":")
    if not _valid_port(port):
        return None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if (
        not host
        or len(host) > 253
        or host.startswith(".")
        or host.endswith(".")  # two trailing dots ("google.com..") name no host
        or ".." in host
        or _BAD_HOST_RE.search(host) is not None
        or not host.isprintable()
    ):
        return None
    if host.startswith("www.") and "." in host[4:]:
        host = host[4:]
    return host


def _parse(referrer: str | None) -> tuple[str, bool] | None:
    """(normalised host, is an android-app referrer) or None when there is no host."""
    if not referrer or not isinstance(referrer, str):
        return None
    match = _URL_RE.match(referrer)
    if match is None:
        return None
    host = _host_of_authority(match.group(2))
    if host is None:
        return None
    scheme = match.group(1)
    return host, scheme is not None and scheme.lower() == "android-app"


def _is_country_code(label: str) -> bool:
    return len(label) == 2 and label.isascii() and label.isalpha()


def _fold_country_domain(host: str) -> str:
    labels = host.split(".")
    if (
        len(labels) >= 3
        and labels[-3] in _COUNTRY_BRANDS
        and labels[-2] in ("co", "com")
        and _is_country_code(labels[-1])
    ):
        return ".".join([*labels[:-2], "com"])
    if len(labels) >= 2 and labels[-2] in _COUNTRY_BRANDS and _is_country_code(labels[-1]):
        return ".".join([*labels[:-1], "com"])
    return host


@lru_cache(maxsize=16384)
def _classify_host(host: str) -> tuple[str, _Medium | None]:
    """(source, medium) of a normalised web host: the longest matching table entry wins."""
    name = _fold_country_domain(host)
    while True:
        hit = _BY_HOST.get(name)
        if hit is not None:
            return hit
        dot = name.find(".")
        if dot < 0:
            return host, None
        name = name[dot + 1 :]


@lru_cache(maxsize=4096)
def _classify_app(package: str) -> tuple[str, _Medium | None]:
    """(source, medium) of an Android package: the longest matching package prefix wins."""
    name = package
    while True:
        hit = _BY_APP.get(name)
        if hit is not None:
            return hit
        dot = name.rfind(".")
        if dot < 0:
            return package, None
        name = name[:dot]


@lru_cache(maxsize=1024)
def _normalise_page_host(page_host: str) -> str | None:
    parsed = _parse(page_host)
    if parsed is not None:
        return parsed[0]
    authority = re.split(r"[/?#\\]", page_host.strip(), maxsplit=1)[0]
    return _host_of_authority(authority) if len(authority) <= 1024 else None


def _resolve(referrer: str | None, page_host: str | None) -> tuple[str, _Medium | None]:
    parsed = _parse(referrer)
    if parsed is None:
        return DIRECT, None
    host, is_app = parsed
    if is_app:
        return _classify_app(host)
    if page_host and isinstance(page_host, str) and host == _normalise_page_host(page_host):
        return DIRECT, None
    return _classify_host(host)


def referrer_host(referrer: str | None) -> str | None:
    """Normalised host of a referrer URL: lower-cased, 'www.' / 'm.' (mobile) prefix removed only
    for www, userinfo and port stripped, trailing dot removed; None when there is no parsable host
    (empty, relative, garbage)."""
    parsed = _parse(referrer)
    return None if parsed is None else parsed[0]


def referrer_source(referrer: str | None, page_host: str | None = None) -> str:
    """The visit source for an event: '(direct)' when referrer is None/empty/unparsable or is a
    self-referral (referrer host equals page_host after the same normalisation, so
    www.example.com == example.com); the name of a known source (search engine, social network,
    AI assistant, e-mail webmail, …) when the host matches the built-in table; otherwise the
    normalised host itself."""
    return _resolve(referrer, page_host)[0]


def referrer_medium(referrer: str | None, page_host: str | None = None) -> str | None:
    """'search' | 'social' | 'ai' | 'email' | None(unknown/direct): the category of the known
    source."""
    return _resolve(referrer, page_host)[1]


def sources_by_medium() -> dict[str, tuple[str, ...]]:
    """Names of the known sources by medium (``search``, ``social``, ``video``, ``shopping``, ``ai``,
    ``email``), in table order."""
    out: dict[str, tuple[str, ...]] = {}
    for name, medium, _ in _SOURCES:
        out[medium] = (*out.get(medium, ()), name)
    return out


@lru_cache(maxsize=4096)
def tag_source(tag: str) -> str:
    """The source named by a ``utm_source`` / ``source`` / ``ref`` tag: a known source's name matched
    case-insensitively (``google`` → Google), a common shorthand (``ig`` → Instagram, ``adwords`` →
    Google), a known source's host (``news.ycombinator.com`` → Hacker News); otherwise the tag as
    given."""
    key = tag.strip().lower()
    hit = _BY_NAME.get(key) or _TAGS.get(key)
    if hit is not None:
        return hit
    if "." in key and len(key) <= 253 and (host := _host_of_authority(key)) is not None:
        name, medium = _classify_host(host)
        if medium is not None:
            return name
    return tag


def visit_source(referrer: str | None, page_host: str | None, tag: str | None) -> str:
    """The source of an event: the referrer's (:func:`referrer_source`), or, when that is
    ``(direct)`` (no referrer, an unparsable one, a self-referral), the source the landing URL's tag
    names (:func:`tag_source`)."""
    source = referrer_source(referrer, page_host)
    if source == DIRECT and tag:
        return tag_source(tag)
    return source
