"""A page that embeds the tracking script, and a view that tracks an event server-side."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from mysite.analytics import analytics

PAGE = """<!doctype html>
<html>
<head>
  <title>Django + mallard</title>
  <!-- data-include-local: count visits from localhost too (the script skips them by default) -->
  <script defer data-domain="example.com" data-include-local src="/_m/mallard.js"></script>
</head>
<body>
  <h1>Hello from Django</h1>
  <p>This visit is counted. See it on the <a href="/_m/">dashboard</a>.</p>
</body>
</html>
"""


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    outcome = analytics.track("signup", site="example.com", url="https://example.com/signup",
                              props={"plan": "pro"})
    return JsonResponse({"tracked": bool(outcome), "reason": outcome.reason})
