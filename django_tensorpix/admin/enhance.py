"""The "Enhance a video" page: a URL or a file, ML models grouped by task, the options.

The option fields are the ``Job`` columns that hold create options (one fact, the model),
and validation is the submission service's own (``validate_job_options``, then
``enhance_from_url`` / ``enhance_file``), so the page accepts exactly what a submission
accepts; its per-field errors land on the matching form fields.
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
from django_tensorpix.models import REQUESTED_OPTION_FIELDS, Job, MLModel

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
        for name in REQUESTED_OPTION_FIELDS:
            field = Job._meta.get_field(name).formfield(required=False)  # type: ignore[union-attr]
            if field is not None:
                self.fields[name] = field

    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in REQUESTED_OPTION_FIELDS if name in self.fields]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("video_url")) == bool(data.get("file")):
            raise ValidationError(gettext("Give either a video URL or a file, not both."))
        return data

    def options(self) -> dict[str, Any]:
        """The options that were set; empty ones are left to TensorPix's defaults."""
        values = {name: self.cleaned_data.get(name) for name in REQUESTED_OPTION_FIELDS}
        return {name: value for name, value in values.items() if value not in (None, "")}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's per-field errors on the matching fields, the rest on the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


def enhance_view(model_admin: JobAdmin, request: HttpRequest) -> HttpResponse:
    form = EnhanceForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        url, upload = form.cleaned_data["video_url"], form.cleaned_data["file"]
        models = list(form.cleaned_data["ml_models"])
        options = form.options()
        account = form.cleaned_data["account"]
        from django_tensorpix import services

        try:
            services.validate_job_options(options, from_url=bool(url))
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
