"""The API's routes, under TensorPix's own paths (``jobs/``, ``videos/``...).

Mount them with ``path("api/tensorpix/", include("django_tensorpix.api.urls"))``.

URL names live in the ``tensorpix-api`` namespace: ``tensorpix-api:job-list``,
``tensorpix-api:job-detail``, ``tensorpix-api:job-cancel``...
"""

from rest_framework.routers import DefaultRouter

from django_tensorpix.api import views

app_name = "tensorpix-api"

router = DefaultRouter()
router.register("jobs", views.JobViewSet, basename="job")
router.register("videos", views.VideoViewSet, basename="video")
router.register("restored-videos", views.RestoredVideoViewSet, basename="restored-video")
router.register("ml-models", views.MLModelViewSet, basename="ml-model")

urlpatterns = router.urls
