"""The whole firmware app with the generated network on an emulated Cortex-M4F (QEMU mps2-an386, DSP kernels):
test clips' PCM in flash -> audio ring -> C frontend -> feature ring -> kws_net.c -> recognizer, on the device.

Checked against the Python pipeline: the device's network input equals the Python frontend's features quantized
with the model's scale (within 1 step on a few values: float32 libm differences, as tests/test_firmware.py
allows), LiteRT's reference kernels on the device's own input give exactly the device's scores, and the device's
top-1 equals LiteRT's on the Python features for every clip. The same app built for every other emulated core (M7,
M33, M55, the ARMv6-M build) gives the M4's input and scores bit for bit. Instructions per inference are measured
(-icount shift=0, SysTick calibrated in the image) and must be far below TFLM's ~75 per MAC.

Run: .venv/bin/python -m pytest tests/test_engine_qemu.py -q   (~20 s; needs arm-none-eabi-gcc, qemu-system-arm)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from engine_support import quantized, read_clips, reference, split_features, split_files

from kws.engine import generate
from kws.engine.build import write_model_settings
from kws.engine.qemu import CORES, build_app_image, run_app_image, write_clips
from kws.errors import KwsError

pytestmark = pytest.mark.firmware
CLIPS = 6


@pytest.fixture(scope="module")
def device_run(mini_root, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (make install)")
    from engine_support import tflite

    fb = tflite(mini_root, "ds-cnn-s", "relu")
    out = tmp_path_factory.mktemp("qemu")
    pick = np.linspace(0, len(split_files(mini_root)) - 1, CLIPS).astype(int)
    pcm = read_clips([split_files(mini_root)[i] for i in pick])
    net = generate(fb, out)
    write_model_settings(fb, out)
    write_clips(out, pcm)
    elf = build_app_image(out, out / "kws_app.elf", "cortex-m4")
    return fb, net, split_features(mini_root)[pick], run_app_image(elf, "cortex-m4")


def test_device_scores_equal_litert_on_the_device_input(device_run):
    fb, _, _, run = device_run
    want, _ = reference(fb, run.features)
    np.testing.assert_array_equal(run.scores, want)
    np.testing.assert_array_equal(run.labels, want.argmax(axis=1))


def test_device_input_and_top1_match_the_python_pipeline(device_run):
    fb, _, features, run = device_run
    python_input = quantized(fb, features)
    diff = np.abs(run.features.astype(int) - python_input)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99, f"{(diff > 0).sum()} feature values differ"
    want, _ = reference(fb, python_input)
    np.testing.assert_array_equal(run.labels, want.argmax(axis=1))


def test_instructions_per_inference_measured(device_run):
    _, net, _, run = device_run
    assert run.instructions_per_tick == pytest.approx(40.0, rel=0.01)  # mps2-an386 SysTick: 25 MHz at 1 GHz icount
    per_mac = run.inference_instructions / net.macs
    assert np.all(per_mac > 0.5) and np.all(per_mac < 5.0), per_mac  # TFLM's reference kernels: ~75
    # the layers account for the inference (hook overhead and the tick resolution of 40 instructions aside)
    np.testing.assert_allclose(run.layer_instructions.sum(axis=1), run.inference_instructions, rtol=0.01)
    assert np.all(run.loop_instructions > run.inference_instructions)  # + 49 frontend frames, ring, recognizer
    assert 256 < run.stack_bytes < 8192


@pytest.mark.parametrize("core", [c for c in CORES if c != "cortex-m4"])
def test_every_emulated_core_gives_the_m4_scores(device_run, core, tmp_path):
    """The same app image for M7 (mps2-an500), M33 (an505), M55 (an547) and ARMv6-M (an385): the device's input and
    scores equal the M4's bit for bit (so LiteRT's and Python's too), with its own instruction count."""
    _, net, _, m4 = device_run
    out = Path(net.files[0]).parent
    run = run_app_image(build_app_image(out, tmp_path / f"{core}.elf", core), core)
    np.testing.assert_array_equal(run.features, m4.features)
    np.testing.assert_array_equal(run.scores, m4.scores)
    per_mac = run.inference_instructions / net.macs
    assert np.all(per_mac > 0.5) and np.all(per_mac < (30.0 if core == "cortex-m0plus" else 5.0)), per_mac


def test_image_for_an_unknown_core_is_a_one_line_error(tmp_path):
    with pytest.raises(KwsError, match="--core"):
        build_app_image(tmp_path, tmp_path / "x.elf", "cortex-a53")
