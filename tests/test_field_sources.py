"""One fact in one place: the client's payload types, the sync's specs and the model columns.

TensorPix's fields are named in three places inside the app (the emulator stays
independent on purpose). These tests fail when one of them gains, loses or renames a
field, or when the sync's nullability and the column's disagree.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models

from django_tensorpix.client import JobPayload, MLModelPayload, RestoredVideoPayload, VideoPayload
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video
from django_tensorpix.sync.payloads import ObjectSpec
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

SOURCES = [
    (MLModelPayload, ML_MODEL, MLModel),
    (VideoPayload, VIDEO, Video),
    (RestoredVideoPayload, RESTORED_VIDEO, RestoredVideo),
    (JobPayload, JOB, Job),
]
IDS = [spec.object_type for _, spec, _ in SOURCES]


@pytest.mark.parametrize(("payload_type", "spec", "model"), SOURCES, ids=IDS)
def test_client_payload_types_name_the_fields_the_sync_reads(
    payload_type: Any, spec: ObjectSpec, model: type[models.Model]
) -> None:
    typed = set(payload_type.__required_keys__ | payload_type.__optional_keys__)
    assert typed == {"id"} | {f.name for f in spec.fields}


@pytest.mark.parametrize(("payload_type", "spec", "model"), SOURCES, ids=IDS)
def test_every_synced_field_has_a_column_of_the_same_name(
    payload_type: Any, spec: ObjectSpec, model: type[models.Model]
) -> None:
    fields = {f.name: f for f in model._meta.get_fields()}
    for field in spec.fields:
        column = fields.get(field.name)
        assert column is not None, f"{model.__name__} has no field {field.name!r}"
        if field.nested:
            assert column.is_relation, f"{model.__name__}.{field.name} should be a relation"
        elif field.nullable or not field.required:
            assert column.null, f"{model.__name__}.{field.name} must be nullable"
