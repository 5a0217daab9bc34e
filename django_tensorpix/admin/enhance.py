"""The "Enhance a video" page: a URL or a file, ML models grouped by task, the options.

The option fields are the ``Job`` columns that hold create options, with the bounds of
TensorPix's schema from :data:`django_tensorpix.options.JOB_OPTIONS` (one table) shown and
set as ``min``/``max``. Validation is the submission service's own (``enhance_from_url`` /
``enhance_file`` validate before writing anything), so the page accepts exactly what a
submission accepts; its per-field errors land on the matching form fields.
"""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_tensorpix.admin.actions import error_text
from django_tensorpix.conf import DEFAULT_ACCOUNT, tensorpix_settings
from django_tensorpix.enums import Task
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job, MLModel
from django_tensorpix.options import JOB_OPTIONS, OptionSpec

if TYPE_CHECKING:
    from django_tensorpix.admin.jobs import JobAdmin


def grouped_models(models: list[MLModel]) -> list[tuple[str, list[tuple[int, str]]]]:
    """The catalogue as ``(task, [(pk, name), ...])`` groups, in catalogue order."""
    groups = []
    for task, members in groupby(models, key=lambda model: model.task):
        label = Task(task).label if task in Task.values else gettext("Task %(n)s") % {"n": task}
        groups.append((str(label), [(model.pk, model.name) for model in members]))
    return groups


class EnhanceForm(forms.Form):
    video_url = forms.URLField(
        label=_("Video URL"),
        required=False,
        assume_scheme="https",
        help_text=_("A public http(s) URL TensorPix downloads the video from."),
    )
    file = forms.FileField(label=_("or a video file"), required=False)
    ml_models = forms.ModelMultipleChoiceField(
        label=_("ML models"),
        queryset=MLModel.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    account = forms.ChoiceField(label=_("Account"), initial=DEFAULT_ACCOUNT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        accounts = sorted(tensorpix_settings.accounts)
        account_field: Any = self.fields["account"]
        account_field.choices = [(alias, alias) for alias in accounts]
        if len(accounts) == 1:
            self.fields["account"].widget = forms.HiddenInput()
        catalogue = MLModel.objects.filter(missing_remote=False)
        models_field: Any = self.fields["ml_models"]
        models_field.queryset = catalogue
        models_field.choices = grouped_models(list(catalogue))
        for spec in JOB_OPTIONS:
            self.fields[spec.name] = option_field(spec)

    def option_fields(self) -> list[forms.BoundField]:
        return [self[spec.name] for spec in JOB_OPTIONS]

    def clean(self) -> dict[str, Any]:
        """The source, and the options checked by the services' own rules right away, so
        every mistake is shown at once (the submission checks them again)."""
        from django_tensorpix.services import validate_job_options

        data = super().clean() or {}
        from_url = bool(data.get("video_url"))
        if from_url == bool(data.get("file")):
            self.add_error(None, gettext("Give either a video URL or a file, not both."))
        try:
            validate_job_options(self.options(), from_url=from_url)
        except ValidationError as error:
            self.add_service_errors(error)
        return data

    def options(self) -> dict[str, Any]:
        """The options that were set; empty ones are left to TensorPix's defaults."""
        values = {spec.name: self.cleaned_data.get(spec.name) for spec in JOB_OPTIONS}
        return {name: value for name, value in values.items() if value not in (None, "")}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's per-field errors on the matching fields, the rest on the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            field = SERVICE_FIELDS.get(field, field)
            self.add_error(field if field in self.fields else None, errors)


# The services' names for the page's fields, where they differ.
SERVICE_FIELDS = {"source": "file", "name": "file"}


def bound(value: float) -> str:
    """``51``, ``0.1``, ``2147483647``: as written in TensorPix's schema."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def option_field(spec: OptionSpec) -> forms.Field:
    """The form field of one create option: the model column's, with TensorPix's bounds."""
    column: Any = Job._meta.get_field(spec.name)
    field: forms.Field = column.formfield(required=False)
    notes = []
    if spec.minimum is not None and spec.maximum is not None:
        field.widget.attrs.update(min=spec.minimum, max=spec.maximum)
        notes.append(
            gettext("From %(minimum)s to %(maximum)s.")
            % {"minimum": bound(spec.minimum), "maximum": bound(spec.maximum)}
        )
    if not spec.from_url:
        notes.append(gettext("Files only: TensorPix ignores it for URLs."))
    field.help_text = " ".join(notes)
    return field


def enhance_view(model_admin: JobAdmin, request: HttpRequest) -> HttpResponse:
    form = EnhanceForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        url, upload = form.cleaned_data["video_url"], form.cleaned_data["file"]
        models = list(form.cleaned_data["ml_models"])
        options = form.options()
        account = form.cleaned_data["account"]
        from django_tensorpix import services

        try:
            if url:
                job = services.enhance_from_url(
                    url, models, user=request.user, account=account, **options
                )
            else:
                job = services.enhance_file(
                    upload, models, name=upload.name, user=request.user, account=account, **options
                )
        except ValidationError as error:
            form.add_service_errors(error)
        except TensorPixError as error:
            form.add_error(None, error_text(error))
        else:
            messages.success(
                request,
                gettext("%(job)s created; it is being submitted to TensorPix.") % {"job": job},
            )
            return HttpResponseRedirect(model_admin.change_url(job))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Enhance a video"),
        "opts": model_admin.opts,
        "form": form,
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "admin/django_tensorpix/job/enhance.html", context)
