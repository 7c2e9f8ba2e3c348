"""Shared vocabulary of the benchmark traffic: User-Agents, pages, referrers, UTM tags, custom events,
countries and screen widths, with weights; and a one-line description of the machine for the reports.

Used by ``generate.py`` (synthetic lakes, vectorised) and ``bench_ingest.py`` (``Mallard.track()`` calls),
so both describe the same kind of site. Nothing here is random: callers draw with their own seeded
generators.
"""

from __future__ import annotations

import itertools
import os
import platform
import random
import re
import subprocess
from pathlib import Path
from typing import Final

import orjson

# -- User-Agents ------------------------------------------------------------------------------------
# (weight, User-Agent). Weights follow a typical 2024/25 web mix: ~55% desktop, ~40% mobile, ~5% tablet.
USER_AGENTS: Final[tuple[tuple[float, str], ...]] = (
    # desktop Chrome (reduced UA strings, as Chrome sends them today)
    (14.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36"),
    (5.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/130.0.0.0 Safari/537.36"),
    (7.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36"),
    (2.0, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36"),
    (0.8, "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36"),
    # Edge, Opera
    (5.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    (0.8, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    # Safari on macOS
    (6.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.1 Safari/605.1.15"),
    (1.5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.6 Safari/605.1.15"),
    # Firefox
    (3.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (1.5, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (1.0, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"),
    (1.2, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"),
    # iPhone
    (12.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
           "Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1"),
    (4.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
    (2.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    (1.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.41.103;FBBV/624569416;FBDV/iPhone15,2;"
          "FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/80]"),
    # Android
    (10.0, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Mobile Safari/537.36"),
    (2.0, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.6778.81 Mobile Safari/537.36"),
    (3.0, "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
          "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
    (0.8, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
    # tablets
    (3.0, "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.6 Mobile/15E148 Safari/604.1"),
    (1.0, "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36"),
)

# Crawlers seen by every site; mallard drops them (filter_bots).
BOT_USER_AGENTS: Final = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)

_VERSION = re.compile(r"(Chrome|CriOS|Firefox|Version|Edg|OPR|SamsungBrowser|rv:)/?(\d+)((?:\.\d+)*)")


def mutate_user_agent(ua: str, rng: random.Random) -> str:
    """A plausible variant of ``ua`` with different version numbers (a build nobody has sent yet).

    Every browser version token gets a nearby major version and random minor/build numbers, the way
    real traffic spreads over releases, so the User-Agent parser does real work on it.
    """

    def repl(m: re.Match[str]) -> str:
        token, major, rest = m.group(1), int(m.group(2)), m.group(3)
        sep = "" if token == "rv:" else "/"
        new_major = max(1, major + rng.randint(-6, 2))
        parts = [str(rng.randint(0, 3) if i == 0 else rng.randint(0, 9999)) for i in range(rest.count("."))]
        return f"{token}{sep}{new_major}" + "".join("." + p for p in parts)

    return _VERSION.sub(repl, ua)


# Width choices (CSS px) per device class.
SCREEN_WIDTHS: Final[dict[str, tuple[tuple[float, int], ...]]] = {
    "desktop": ((30, 1920), (18, 1536), (15, 1440), (10, 1366), (8, 2560), (8, 1280), (6, 1680), (5, 1600)),
    "mobile": ((22, 390), (15, 393), (14, 414), (12, 375), (12, 412), (10, 360), (8, 430), (7, 384)),
    "tablet": ((35, 820), (25, 768), (15, 810), (15, 834), (10, 800)),
}

# -- pages ------------------------------------------------------------------------------------------
_WORDS: Final = ("analytics", "privacy", "cookieless", "duckdb", "parquet", "python", "dashboards",
                 "retention", "funnels", "events", "sessions", "gdpr", "self-hosting", "performance",
                 "pricing", "release", "guide", "migration", "tracking", "sql", "notebooks", "flask",
                 "fastapi", "django", "kubernetes", "docker", "backups", "compaction", "timezones")


def _slugs(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    combos = [f"{a}-{b}" for a, b in itertools.permutations(_WORDS, 2)]
    rng.shuffle(combos)
    return combos[:count]


def page_paths() -> list[str]:
    """~500 distinct page paths in popularity order (the index is the Zipf rank)."""
    core = ["/", "/pricing", "/blog", "/docs", "/features", "/signup", "/login", "/about", "/contact",
            "/changelog", "/integrations", "/customers", "/security", "/enterprise", "/demo",
            "/careers", "/privacy", "/terms", "/status", "/partners"]
    features = [f"/features/{w}" for w in ("realtime", "funnels", "goals", "exports", "api", "teams",
                                           "alerts", "reports", "imports", "sso")]
    blog = [f"/blog/{s}" for s in _slugs(210, 1)]
    sections = ("getting-started", "tracking", "queries", "api", "deployment", "storage", "privacy",
                "integrations")
    docs = [f"/docs/{sections[i % len(sections)]}/{s}" for i, s in enumerate(_slugs(200, 2))]
    integrations = [f"/integrations/{w}" for w in ("wordpress", "shopify", "ghost", "hugo", "jekyll",
                                                   "nextjs", "gatsby", "webflow", "squarespace",
                                                   "wix", "framer", "astro", "django", "rails",
                                                   "laravel", "flask", "fastapi", "svelte", "vue",
                                                   "react", "angular", "docusaurus", "mkdocs",
                                                   "sphinx", "notion", "carrd", "bubble", "vercel",
                                                   "netlify", "cloudflare")]
    customers = [f"/customers/{s}" for s in _slugs(20, 3)]
    careers = [f"/careers/{w}" for w in ("backend-engineer", "frontend-engineer", "designer",
                                         "support-lead", "devrel", "data-engineer")]
    rest = features + blog + docs + integrations + customers + careers
    random.Random(4).shuffle(rest)
    return core + rest


def zipf_weights(n: int, exponent: float = 1.05) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


# -- referrers --------------------------------------------------------------------------------------
# (weight, referrer URL or None for direct). Several URL variants per source, as browsers send them.
REFERRERS: Final[tuple[tuple[float, str | None], ...]] = (
    (38.0, None),
    (20.0, "https://www.google.com/"),
    (3.0, "https://www.google.de/"),
    (2.0, "https://www.google.co.uk/"),
    (1.0, "android-app://com.google.android.googlequicksearchbox/"),
    (3.0, "https://www.bing.com/"),
    (2.0, "https://duckduckgo.com/"),
    (0.6, "https://www.ecosia.org/"),
    (0.5, "https://search.brave.com/"),
    (0.5, "https://yandex.ru/"),
    (2.5, "https://chatgpt.com/"),
    (0.8, "https://www.perplexity.ai/"),
    (0.4, "https://claude.ai/"),
    (0.3, "https://gemini.google.com/"),
    (2.0, "https://t.co/"),
    (1.5, "https://www.reddit.com/r/selfhosted/comments/1abcde/privacy_first_analytics/"),
    (1.0, "https://old.reddit.com/"),
    (1.8, "https://news.ycombinator.com/"),
    (0.6, "https://news.ycombinator.com/item?id=41234567"),
    (1.5, "https://www.linkedin.com/"),
    (1.2, "https://l.facebook.com/"),
    (0.5, "https://www.instagram.com/"),
    (1.5, "https://github.com/"),
    (0.8, "https://github.com/mallard/mallard/blob/main/README.md"),
    (0.6, "https://www.youtube.com/"),
    (0.5, "https://bsky.app/"),
    (0.4, "https://mastodon.social/"),
    (0.4, "https://stackoverflow.com/questions/123456/self-hosted-analytics"),
    (0.4, "https://dev.to/"),
    (0.3, "https://mail.google.com/"),
    (0.8, "https://news.example.org/2025/04/the-state-of-web-analytics"),
    (0.6, "https://someblog.dev/posts/dropping-google-analytics"),
    (0.5, "https://awesome-selfhosted.net/"),
    (0.4, "https://alternativeto.net/software/google-analytics/"),
    (0.3, "https://www.producthunt.com/posts/mallard"),
)

# (weight, utm_source, utm_medium, utm_campaign, utm_content, utm_term)
UTM_TAGS: Final[tuple[tuple[float, str, str | None, str | None, str | None, str | None], ...]] = (
    (30.0, "newsletter", "email", "weekly-digest", None, None),
    (8.0, "newsletter", "email", "product-update", "header-link", None),
    (15.0, "google", "cpc", "brand", None, "mallard analytics"),
    (10.0, "google", "cpc", "generic", None, "privacy analytics"),
    (12.0, "twitter", "social", "launch-week", None, None),
    (8.0, "linkedin", "social", "q2-push", "carousel", None),
    (6.0, "producthunt", None, "launch", None, None),
    (5.0, "github", "readme", None, None, None),
    (6.0, "partner-blog", "referral", "integration-guide", None, None),
)

# -- custom events ----------------------------------------------------------------------------------
# (weight, name, props or None, revenue amount or None, currency or None)
CustomEvent = tuple[float, str, dict[str, str] | None, float | None, str | None]


def custom_events() -> list[CustomEvent]:
    out: list[CustomEvent] = []
    for plan, method in itertools.product(("free", "pro", "team"), ("email", "google", "github")):
        out.append((3.0 if plan == "free" else 1.0, "Signup", {"plan": plan, "method": method}, None, None))
    for plan, amount in (("pro", 19.0), ("team", 49.0), ("enterprise", 499.0)):
        for currency in ("EUR", "USD"):
            out.append((1.0 if plan != "enterprise" else 0.1, "Purchase", {"plan": plan}, amount,
                        currency))
    for target in ("https://github.com/mallard/mallard", "https://docs.duckdb.org/",
                   "https://twitter.com/mallard", "https://discord.gg/mallard"):
        out.append((4.0, "Outbound Link: Click", {"url": target}, None, None))
    for name in ("whitepaper.pdf", "mallard-0.2.tar.gz", "pricing.pdf"):
        out.append((2.0, "File Download", {"url": f"https://example.com/files/{name}"}, None, None))
    for button, variant in itertools.product(("hero", "nav", "footer", "pricing-table"), ("a", "b")):
        out.append((3.0, "CTA Click", {"button": button, "variant": variant}, None, None))
    for i in range(20):
        out.append((0.5, "404", {"path": f"/old/page-{i}"}, None, None))
    out.append((3.0, "Newsletter Signup", {"form": "footer"}, None, None))
    out.append((2.0, "Video Play", None, None, None))
    out.append((2.0, "Copy Snippet", {"language": "python"}, None, None))
    out.append((1.0, "Copy Snippet", {"language": "javascript"}, None, None))
    return out


def props_json(props: dict[str, str] | None) -> str | None:
    """Props as mallard stores them (canonical JSON, sorted keys)."""
    return None if not props else orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode()


# -- location ---------------------------------------------------------------------------------------
# (weight, country, ((region, city), ...)); None = no GeoIP answer
COUNTRIES: Final[tuple[tuple[float, str | None, tuple[tuple[str, str], ...]], ...]] = (
    (27.0, "US", (("California", "San Francisco"), ("New York", "New York"), ("Texas", "Austin"),
                  ("Washington", "Seattle"), ("Illinois", "Chicago"))),
    (9.0, "DE", (("Berlin", "Berlin"), ("Bavaria", "Munich"), ("Hamburg", "Hamburg"))),
    (7.0, "GB", (("England", "London"), ("England", "Manchester"), ("Scotland", "Edinburgh"))),
    (7.0, "IN", (("Karnataka", "Bengaluru"), ("Maharashtra", "Mumbai"), ("Delhi", "New Delhi"))),
    (5.0, "FR", (("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon"))),
    (4.0, "CA", (("Ontario", "Toronto"), ("British Columbia", "Vancouver"), ("Quebec", "Montreal"))),
    (3.0, "NL", (("North Holland", "Amsterdam"), ("South Holland", "Rotterdam"))),
    (3.0, "BR", (("São Paulo", "São Paulo"), ("Rio de Janeiro", "Rio de Janeiro"))),
    (3.0, "JP", (("Tokyo", "Tokyo"), ("Osaka", "Osaka"))),
    (2.5, "ES", (("Madrid", "Madrid"), ("Catalonia", "Barcelona"))),
    (2.5, "IT", (("Lombardy", "Milan"), ("Lazio", "Rome"))),
    (2.0, "PL", (("Mazovia", "Warsaw"), ("Lesser Poland", "Kraków"))),
    (2.0, "AU", (("New South Wales", "Sydney"), ("Victoria", "Melbourne"))),
    (1.5, "SE", (("Stockholm", "Stockholm"),)),
    (1.2, "CH", (("Zurich", "Zürich"), ("Geneva", "Geneva"))),
    (1.0, "AT", (("Vienna", "Vienna"),)),
    (1.0, "SG", (("Singapore", "Singapore"),)),
    (1.0, "UA", (("Kyiv City", "Kyiv"),)),
    (0.8, "MX", (("Mexico City", "Mexico City"),)),
    (0.8, "KR", (("Seoul", "Seoul"),)),
    (0.6, "ZA", (("Gauteng", "Johannesburg"),)),
    (0.5, "NG", (("Lagos", "Lagos"),)),
    (2.0, None, ()),
)

# Site ids of the benchmark lakes; the first one is the dominant site.
SITE_IDS: Final = ("www.example.com", "docs.example.org", "shop.example.net", "blog.example.dev",
                   "status.example.io", "app.example.co")


def site_weights(sites: int) -> list[float]:
    """The dominant site gets 2/3 of the traffic; the others share the rest, each half the previous."""
    if sites == 1:
        return [1.0]
    rest = [0.5**i for i in range(sites - 1)]
    total = sum(rest)
    return [2 / 3] + [(1 / 3) * r / total for r in rest]


def describe_machine() -> str:
    """Versions, CPU, load average and the git revision of the code measured."""
    import duckdb

    import mallard

    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=False, cwd=here).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../mallard"], capture_output=True,
                               text=True, check=False, cwd=here).stdout.strip()
        rev = head + (" + uncommitted changes in mallard/" if dirty else "")
    except OSError:
        rev = "unknown"
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"mallard {mallard.__version__} (git {rev}), Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, nproc {os.cpu_count()}, {model}, load average {load}")
