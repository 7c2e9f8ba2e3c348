"""The example's own pages; mallard is mounted in wsgi.py, in front of Django."""

from django.urls import path

from mysite import views

urlpatterns = [
    path("", views.home),
    path("signup", views.signup),
]
