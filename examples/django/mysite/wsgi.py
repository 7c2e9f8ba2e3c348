"""WSGI entry point: Django, with mallard's tracking script, HTTP API and dashboard under /_m.

``python manage.py runserver`` serves it (settings.WSGI_APPLICATION), and so does any WSGI server:
``gunicorn --chdir examples/django mysite.wsgi``.
"""

import os

from django.core.wsgi import get_wsgi_application

from mallard.adapters.middleware import PageviewWSGIMiddleware
from mallard.adapters.wsgi import MallardWSGI
from mysite.analytics import analytics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

django_app = get_wsgi_application()
mallard_app = MallardWSGI(analytics)
PREFIX = "/_m"


def dispatch(environ, start_response):
    """Send /_m and below to mallard (the prefix moved from PATH_INFO to SCRIPT_NAME), the rest to Django."""
    path = environ.get("PATH_INFO", "")
    if path == PREFIX or path.startswith(PREFIX + "/"):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + PREFIX
        environ["PATH_INFO"] = path[len(PREFIX):] or "/"
        return mallard_app(environ, start_response)
    return django_app(environ, start_response)


# The request context: track() in a Django view picks up the client's IP and User-Agent by itself.
application = PageviewWSGIMiddleware(dispatch, analytics, pageviews=False)
