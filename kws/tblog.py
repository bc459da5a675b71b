"""TensorBoard scalars for a run directory (run_dir/tb), written without torch.utils.tensorboard.

torch.utils.tensorboard would import TensorFlow when it is installed (~6 s per process); the event file format
itself needs only tensorboard's protobufs (TFRecord framing + a brain.Event:2 header).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


class ScalarLog:
    """TensorBoard scalars under run_dir/tb, written with tensorboard's RecordWriter and protos; one event file per
    instance, flushed after every step so a killed job keeps what it logged."""

    def __init__(self, run_dir: str | Path) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder = Path(run_dir) / "tb"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.kws"
        self._file = open(folder / name, "wb")  # noqa: SIM115 -- closed by close()
        self._writer = RecordWriter(self._file)
        self._writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())

    def add_scalars(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()])
        self._writer.write(Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


__all__ = ["ScalarLog"]
