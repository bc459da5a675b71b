"""How the device streams (DeviceConfig), which board projects deploy/ provides (PLATFORMS), which engines run the
network (ENGINES).

Torch-free, so the command line reads its defaults and choices here (tests/test_cli_train.py checks that building
the parser imports no torch). kws.firmware writes these settings into kws_settings.h; kws.stream runs the same
recognizer in Python; kws.firmware_build assembles a project for one of PLATFORMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kws.errors import KwsError

if TYPE_CHECKING:
    from kws.frontend import FrontendConfig

PLATFORMS = ("arduino", "mbed")  # the platform shells in deploy/
# the network's runtime: kws, our generated int8 engine (kws.engine, the default); tflm, TensorFlow Lite Micro
ENGINES = ("kws", "tflm")


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """How the device streams: inference period, audio buffering and the recognizer (posterior smoothing).

    The recognizer averages the int8 scores of the inferences in the last average_window_ms, reports the top
    keyword when its average reaches detection_threshold (a probability) over at least minimum_count inferences,
    and stays quiet for suppression_ms after a detection. kws.stream.Recognizer mirrors the C one exactly.
    """

    inference_period_hops: int = 10  # one inference per 10 hops = 200 ms of audio
    audio_ring_ms: int = 1000  # audio buffered while an inference runs (rounded up to a power of two samples)
    average_window_ms: int = 1000
    detection_threshold: float = 0.7
    suppression_ms: int = 1500
    minimum_count: int = 3

    def __post_init__(self) -> None:
        if self.inference_period_hops < 1 or self.audio_ring_ms < 1 or self.average_window_ms < 1:
            raise KwsError("device config: inference_period_hops, audio_ring_ms, average_window_ms must be >= 1")
        if not 0.0 < self.detection_threshold <= 1.0 or self.minimum_count < 1 or self.suppression_ms < 0:
            raise KwsError("device config: need 0 < detection_threshold <= 1, minimum_count >= 1, suppression_ms >= 0")

    def queue_capacity(self, frontend: FrontendConfig) -> int:
        """Inference results that can fall in one averaging window (+1 for the boundary), the C queue size."""
        period_ms = self.inference_period_hops * frontend.hop_samples * 1000 / frontend.sample_rate_hz
        return max(self.minimum_count, math.ceil(self.average_window_ms / period_ms) + 1)

    def threshold_q(self, output_scale: float) -> int:
        """The detection threshold in int8 score steps above the output zero point."""
        return max(1, round(self.detection_threshold / output_scale))


__all__ = ["PLATFORMS", "DeviceConfig"]
