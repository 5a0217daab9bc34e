"""Who may see and do what through the API, the DRF way.

:class:`IsOwnerOrStaff` is the default (``TENSORPIX["API_PERMISSION_CLASSES"]``; or set
``permission_classes`` on a subclass of a viewset). It does three things, so that one
class (and one subclass of it) decides all of them:

* ``has_permission``: authenticated users only (anonymous requests get 401 or 403, as the
  project's authentication classes say, and no data); creating an object needs its
  ``add_<model>`` permission, since a job spends Credits;
* ``filter_queryset``: what a user can see at all: their own jobs, inputs and outputs,
  everything for staff, the whole ML model catalogue for everyone;
* ``has_object_permission``: the same rule for one object, checked before every action.

Objects outside a user's queryset answer 404, so ids of other users' jobs leak nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from django_tensorpix.models import Job, MLModel, RestoredVideo, Video

# How each model reaches the user that owns it; absent means "shared by everyone".
OWNER_PATHS: dict[type[Model], str] = {
    Job: "user",
    Video: "user",
    RestoredVideo: "output_of__user",
}


class IsOwnerOrStaff(BasePermission):
    """Own objects only, staff all; ``add_<model>`` needed to create."""

    message = "You may only see and act on your own TensorPix jobs and videos."

    def sees_everything(self, request: Request) -> bool:
        return bool(request.user.is_staff or request.user.is_superuser)

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if getattr(view, "action", None) == "create":
            model = view.queryset.model
            opts = model._meta
            return bool(user.has_perm(f"{opts.app_label}.add_{opts.model_name}"))
        return True

    def filter_queryset(self, request: Request, queryset: QuerySet[Any]) -> QuerySet[Any]:
        path = OWNER_PATHS.get(queryset.model)
        if path is None or self.sees_everything(request):
            return queryset
        return queryset.filter(**{path: request.user})

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if isinstance(obj, MLModel) or self.sees_everything(request):
            return True
        return owner_id(obj) == request.user.pk


def owner_id(obj: Model) -> int | None:
    """The primary key of the user owning a job, a video or (through its job) an output."""
    if isinstance(obj, RestoredVideo):
        try:
            return obj.output_of.user_id
        except Job.DoesNotExist:
            return None
    user_id: int | None = getattr(obj, "user_id", None)
    return user_id
