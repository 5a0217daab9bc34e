from django.apps import AppConfig


class TensorPixConfig(AppConfig):
    name = "django_tensorpix"
    label = "django_tensorpix"
    verbose_name = "TensorPix"
    # Pinned so the host project's DEFAULT_AUTO_FIELD never changes our migrations.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_tensorpix import (
            checks,  # noqa: F401  (registers the system checks)
            receivers,  # noqa: F401  (connects archive_on_finish)
        )
