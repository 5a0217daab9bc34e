"""Django admin for the mirrored TensorPix objects.

Mirrored rows are view-only here (no Save, no Delete): TensorPix is their source, and the
next sync would overwrite an edit or recreate a deleted row. Changing anything at TensorPix
(refresh, cancel, archive, delete the remote output, retry a submission, enhance a video)
goes through explicit actions that call :mod:`django_tensorpix.services` and
:mod:`django_tensorpix.polling`, with the model's permissions and a confirmation where
Credits are spent or data deleted.
"""

from django_tensorpix.admin.base import MirroredAdmin
from django_tensorpix.admin.jobs import JobAdmin
from django_tensorpix.admin.videos import MLModelAdmin, RestoredVideoAdmin, VideoAdmin

__all__ = ["JobAdmin", "MLModelAdmin", "MirroredAdmin", "RestoredVideoAdmin", "VideoAdmin"]
