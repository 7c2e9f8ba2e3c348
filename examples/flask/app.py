"""A Flask app with mallard mounted at /_m: tracking script, HTTP API and dashboard.

Run it:  flask --app examples/flask/app.py run   (http://127.0.0.1:5000/, dashboard at /_m/;
data in ./mallard-data)
"""

from flask import Flask, Response, jsonify

from mallard.adapters.flask import MallardFlask

app = Flask(__name__)
analytics = MallardFlask(app, url_prefix="/_m")  # settings from app.config["MALLARD_*"] and MALLARD_*

PAGE = """<!doctype html>
<html>
<head>
  <title>Flask + mallard</title>
  <!-- data-include-local: count visits from localhost too (the script skips them by default) -->
  <script defer data-domain="example.com" data-include-local src="/_m/mallard.js"></script>
</head>
<body>
  <h1>Hello from Flask</h1>
  <p>This visit is counted. See it on the <a href="/_m/">dashboard</a>.</p>
</body>
</html>
"""


@app.get("/")
def home() -> str:
    return PAGE


@app.post("/signup")
def signup() -> Response:
    # MallardFlask gives every request a context: track() picks up the client's IP and User-Agent.
    outcome = analytics.mallard.track("signup", site="example.com", url="https://example.com/signup",
                                      props={"plan": "pro"})
    return jsonify(tracked=bool(outcome), reason=outcome.reason)
