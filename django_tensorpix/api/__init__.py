"""A Django REST framework API over the mirrored TensorPix objects, for host projects.

Mount it with one line::

    path("api/tensorpix/", include("django_tensorpix.api.urls"))

Modules: :mod:`.serializers` (TensorPix's field names and nesting, ``id`` the local key and
``tensorpix_id`` TensorPix's, local additions under ``local``), :mod:`.views` (viewsets that
read the models and act through :mod:`django_tensorpix.services` and
:mod:`django_tensorpix.polling`), :mod:`.filters`, :mod:`.permissions`, :mod:`.urls`.
drf-spectacular (the ``api`` extra) documents it; the views work without it.
"""
