"""A FastAPI app with mallard mounted at /_m: tracking script, HTTP API and dashboard.

Run it:  python examples/fastapi/app.py   (http://127.0.0.1:8000/, dashboard at /_m/; data in ./mallard-data)
"""

import os

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import mallard
from mallard.adapters.asgi import MallardASGI
from mallard.adapters.middleware import PageviewMiddleware

analytics = mallard.Mallard()  # settings from the MALLARD_* environment (data_dir: ./mallard-data)

app = FastAPI(lifespan=analytics.lifespan)  # starts mallard with the app, flushes it at shutdown
app.mount("/_m", MallardASGI(analytics))
# The request context: track() in a view picks up the client's IP and User-Agent by itself.
app.add_middleware(PageviewMiddleware, mallard=analytics, pageviews=False)

PAGE = """<!doctype html>
<html>
<head>
  <title>FastAPI + mallard</title>
  <!-- data-include-local: count visits from localhost too (the script skips them by default) -->
  <script defer data-domain="example.com" data-include-local src="/_m/mallard.js"></script>
</head>
<body>
  <h1>Hello from FastAPI</h1>
  <p>This visit is counted. See it on the <a href="/_m/">dashboard</a>.</p>
</body>
</html>
"""


@app.get("/", response_class=HTMLResponse)
def home() -> str:
    return PAGE


@app.post("/signup")
def signup() -> dict[str, object]:
    outcome = analytics.track("signup", site="example.com", url="https://example.com/signup",
                              props={"plan": "pro"})
    return {"tracked": bool(outcome), "reason": outcome.reason}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
