"""Bot detection: crawlers, monitors and HTTP libraries are bots; real browsers (in-app ones too) are not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from mallard._enrich.bots import is_bot, warm_up
from tests.strategies import user_agents

BOTS = {
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
                            "(KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; "
                            "Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
               "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "ahrefs": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "gptbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
              "+https://openai.com/gptbot)",
    "facebook-preview": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "slack-preview": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "whatsapp-preview": "WhatsApp/2.23.20.0 A",
    "curl": "curl/8.4.0",
    "wget": "Wget/1.21.4",
    "python-requests": "python-requests/2.31.0",
    "python-httpx": "python-httpx/0.27.0",
    "go": "Go-http-client/2.0",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.6.2",
    "node-fetch": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "java": "Java/17.0.2",
    "headless-chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "HeadlessChrome/120.0.0.0 Safari/537.36",
    "phantomjs": "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 "
                 "Safari/538.1",
    "lighthouse": "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    "uptimerobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
}

HUMANS = {
    "chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36",
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "safari": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.2 Safari/605.1.15",
    "cubot-phone": "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    "cubot-note": "Mozilla/5.0 (Linux; Android 9; Cubot Note 20 Pro) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/119.0.6045.163 Mobile Safari/537.36",
    "whatsapp-in-app-android": "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) "
                               "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 "
                               "Mobile Safari/537.36 WhatsApp/2.23.25.83",
    "whatsapp-in-app-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                           "(KHTML, like Gecko) Mobile/15E148 WhatsApp/23.24.74",
    "facebook-in-app": "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) "
                       "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 "
                       "Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/430.0.0.23.113;]",
    "instagram-in-app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                        "(KHTML, like Gecko) Mobile/15E148 Instagram 309.0.2.18.110 (iPhone14,5; iOS 17_1; "
                        "en_US; en; scale=3.00; 1170x2532; 536114186)",
    "telegram-in-app": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/120.0.0.0 Mobile Safari/537.36 Telegram-Android/10.3.2",
    "samsung-internet": "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 "
                        "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "electron-slack": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Slack/4.35.131 Chrome/118.0.5993.144 Electron/27.0.2 Safari/537.36",
    "empty": "",
}


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_bots(user_agent: str) -> None:
    assert is_bot(user_agent)


@pytest.mark.parametrize("user_agent", HUMANS.values(), ids=HUMANS.keys())
def test_browsers_are_not_bots(user_agent: str) -> None:
    assert not is_bot(user_agent)


def test_warm_up_compiles_once() -> None:
    warm_up()
    warm_up()
    assert is_bot("curl/8.4.0")


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(user_agents())
def test_is_bot_never_raises(user_agent: str) -> None:
    assert is_bot(user_agent) in (True, False)
