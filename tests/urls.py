from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/tensorpix/", include("django_tensorpix.api.urls")),
]
