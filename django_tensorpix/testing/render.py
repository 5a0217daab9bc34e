"""Payloads as TensorPix serializes them (the upstream schema's components).

Presigned URLs are signed at render time, so every read hands out a fresh URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import isoformat
from .records import FINISHED, Job, RestoredVideo, Video
from .state import EmulatorState
from .storage import URLSigner


@dataclass(frozen=True)
class Renderer:
    """Turns records into JSON-ready dicts at one instant, for one server address."""

    state: EmulatorState
    signer: URLSigner
    storage_base_url: str
    now: float

    def _url(self, key: str) -> str:
        return self.signer.sign(self.storage_base_url, key, self.now)

    def video(self, video: Video) -> dict[str, Any]:
        ready = video.is_ready(self.now)
        # A deleted upload still shows on the jobs that used it, without its files.
        stored = video.uploaded and ready and not video.deleted
        known = ready or not video.uploaded
        return {
            "id": video.id,
            "name": video.name,
            "width": video.width if known else None,
            "height": video.height if known else None,
            "created_at": isoformat(video.created_at),
            "n_frames": video.n_frames if known else None,
            "framerate": video.framerate if known else None,
            "size": video.size,
            "file": self._url(f"videos/{video.id}/file") if stored else None,
            "owner": self.state.owner_email,
            "thumbnail": self._url(f"videos/{video.id}/thumbnail") if stored else None,
            "external_url": video.external_url,
            "bitrate": video.bitrate if known and video.uploaded else None,
            "codec_id": video.codec_id if known else None,
            "bit_depth": video.bit_depth if known else None,
            "chroma_subsampling": video.chroma_subsampling if known else None,
            "color_space": video.color_space if known else None,
        }

    def restored_video(self, video: RestoredVideo) -> dict[str, Any]:
        """An enhanced video; once deleted its links are null and ``deleted`` is set."""
        present = video.deleted_at is None
        key = f"restored-videos/{video.id}"
        return {
            "id": video.id,
            "job_id": video.job_id,
            "preview_videos": {
                "before_video": self._url(f"{key}/before") if present else None,
                "after_video": self._url(f"{key}/after") if present else None,
            },
            "name": video.name,
            "created_at": isoformat(video.created_at),
            "deleted": isoformat(video.deleted_at) if video.deleted_at is not None else None,
            "framerate": video.framerate,
            "n_frames": video.n_frames,
            "bitrate": video.bitrate,
            "codec_id": video.codec_id,
            "bit_depth": video.bit_depth,
            "chroma_subsampling": video.chroma_subsampling,
            "color_space": video.color_space,
            "size": video.size,
            "file": self._url(f"{key}/file") if present else None,
            "thumbnail": self._url(f"{key}/thumbnail") if present else None,
            "width": video.width,
            "height": video.height,
            "quality_score": None,
            "owner": self.state.owner_id,
        }

    def job(self, job: Job) -> dict[str, Any]:
        """``GET /api/jobs/{id}/``.

        ``output_video`` is null until the job is Finished, although the schema declares
        it non-nullable (a documented TensorPix quirk).
        """
        options = job.options
        output = job.output if job.status == FINISHED else None
        return {
            "id": job.id,
            "started": isoformat(job.created_at),
            "preview": options["preview"],
            "description": job.description,
            "cost_usd": str(job.cost),
            "status": job.status,
            "eta_s": self.state.eta(job, self.now),
            "finished": isoformat(job.ended_at) if job.ended_at is not None else None,
            "processing_progress": self.state.progress(job, self.now),
            "input_video": self.video(job.input_video),
            "output_video": self.restored_video(output) if output else None,
            "ml_models": [model.payload() for model in job.ml_models],
            "grain": options["grain"],
            "codec": options["codec"],
            "output_resolution": options["output_resolution"],
            "comparison": options["comparison"],
            "stabilization_smoothing": options["stabilization_smoothing"],
            "fps_interpolation_factor": job.fps_interpolation_factor,
            "playback_speed": options["playback_speed"],
            "sharpen_strength": options["sharpen_strength"],
            "start_frame": options["start_frame"],
            "end_frame": options["end_frame"],
        }

    def created_job(self, job: Job) -> dict[str, Any]:
        """``POST /api/jobs/``'s answer: the ``CreateJob`` serializer echoing the request."""
        options = job.options
        return {
            "id": job.id,
            "codec": options["codec"],
            "crf": options["crf"],
            "qscale": options["qscale"],
            "container": options["container"],
            "chroma_subsampling": options["chroma_subsampling"],
            "preview": options["preview"],
            "start_frame": options["start_frame"],
            "end_frame": options["end_frame"],
            "input_video": job.input_video.id,
            "output_video": None,
            "owner": self.state.owner_email,
            "ml_models": [model.id for model in job.ml_models],
            "output_resolution": options["output_resolution"],
            "grain": options["grain"],
            "comparison": options["comparison"],
            "stabilization_smoothing": options["stabilization_smoothing"],
            "target_fps": options["target_fps"],
            "playback_speed": options["playback_speed"],
            "sharpen_strength": options["sharpen_strength"],
            "cost_usd": str(job.cost),
            "prores_profile": options["prores_profile"],
        }

    def enhance_job_response(self, job: Job) -> dict[str, Any]:
        """``POST /api/jobs/from-url/``'s answer (``EnhanceJobResponse``)."""
        return {
            "id": job.id,
            "cost_usd": str(job.cost),
            "input_video": job.input_video.id,
            "status": job.status,
        }
