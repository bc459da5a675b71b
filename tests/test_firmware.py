"""kws.firmware and firmware_stub/: generated tables equal kws.frontend's, the C frontend (kws_features) equals the
Python frontend + int8 quantization on every clip of the real-speech test split, extreme inputs stay finite in C,
the C unit tests pass, the Cortex-M4 build's size figures come back from frontend_footprint, projects assemble.

Run: .venv/bin/pytest tests/test_firmware.py -q   (tests marked `firmware` need gcc / arm-none-eabi-gcc)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws import firmware, firmware_build
from kws import frontend as fe
from kws.errors import KwsError

CFG = fe.FrontendConfig()
FW = firmware.FIRMWARE_DIR
REPO_DEPLOY = firmware.REPO / "deploy"


def _c_array(text: str, name: str) -> list[str]:
    body = re.search(rf"{name}\[\d+\] = \{{(.*?)\}};", text, re.S).group(1)
    return [v.strip() for v in body.split(",") if v.strip()]


def _floats(text: str, name: str) -> np.ndarray:
    return np.array([float(v.rstrip("f")) for v in _c_array(text, name)], dtype=np.float32)


def _ints(text: str, name: str) -> np.ndarray:
    return np.array([int(v) for v in _c_array(text, name)])


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    firmware.write_settings(
        out,
        CFG,
        ["_silence_", "_unknown_", "yes", "no"],
        0.5,
        -3,
        1 / 256,
        -128,
        "ab" * 32,
        {"flash_bytes": 1234, "ram_bytes": 567, "macs": 89, "tflm_arena_bytes": 1000},
    )
    return out


def test_generated_tables_equal_frontend_tables(generated):
    c = (generated / "kws_tables.c").read_text()
    np.testing.assert_array_equal(_floats(c, "kws_window"), fe.window(CFG))
    np.testing.assert_array_equal(_floats(c, "kws_dct").reshape(10, 40), fe.dct_matrix(CFG))
    # Rebuild the dense filterbank from the sparse C tables: it must equal the librosa-checked frontend matrix.
    start, count, offset = (_ints(c, f"kws_mel_{k}") for k in ("start", "count", "offset"))
    weights = _floats(c, "kws_mel_weights")
    dense = np.zeros((40, CFG.num_fft_bins), np.float32)
    for m in range(40):
        dense[m, start[m] : start[m] + count[m]] = weights[offset[m] : offset[m] + count[m]]
    np.testing.assert_array_equal(dense, fe.mel_filterbank(CFG))
    twiddle = _floats(c, "kws_fft_twiddle").reshape(-1, 2)
    np.testing.assert_allclose(twiddle[256], [0.0, 1.0], atol=1e-7)  # angle 2 pi 256 / 1024 = pi / 2
    assert _c_array(c, "kws_labels") == ['"_silence_"', '"_unknown_"', '"yes"', '"no"']
    assert _ints(c, "kws_label_is_keyword").tolist() == [0, 0, 1, 1]


def test_settings_header_constants_and_first_lines(generated):
    h = (generated / "kws_settings.h").read_text()
    defs = dict(re.findall(r"#define (KWS_\w+) (\S+)", h))
    assert defs["KWS_WINDOW_SAMPLES"] == "640" and defs["KWS_HOP_SAMPLES"] == "320"
    assert defs["KWS_NUM_FRAMES"] == "49" and defs["KWS_FEATURE_ELEMENTS"] == "490" and defs["KWS_NUM_LABELS"] == "4"
    assert defs["KWS_INPUT_SCALE"] == "0.5f" and defs["KWS_INPUT_ZERO_POINT"] == "-3"
    assert defs["KWS_RECOGNIZER_THRESHOLD_Q"] == str(round(0.7 * 256))
    assert defs["KWS_ARENA_BYTES"] == "1056"  # 1000 B measured + 5 % margin, rounded up to 16 B
    assert "X(AddConv2D)" in h and "X(AddSoftmax)" in h
    for name in ("kws_settings.h", "kws_tables.h", "kws_tables.c"):
        first = (generated / name).read_text().splitlines()[0]
        assert first.startswith("/* GENERATED") and "ab" * 32 in first and "flash_bytes=1234" in first
        assert "macs=89" in first and "ram_bytes=567" in first


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(labels=[]), "label"), (dict(input_scale=0.0), "scale"), (dict(ops=("CONV_2D", "GELU")), "GELU")],
)
def test_write_settings_rejects_bad_input(tmp_path, kwargs, match):
    args = dict(
        frontend=CFG,
        labels=["a"],
        input_scale=1.0,
        input_zero_point=0,
        output_scale=1 / 256,
        output_zero_point=-128,
        model_sha256="x",
        figures={},
    )
    args.update(kwargs)
    with pytest.raises(KwsError, match=match):
        firmware.write_settings(tmp_path, **args)


def _build(tmp_path: Path, target: str = "host", goal: str = "tools", gen: Path | None = None) -> Path:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed (make install)")
    cmd = ["make", "-s", "-C", str(FW), f"TARGET={target}", f"BUILD_DIR={tmp_path / 'build'}", goal]
    if gen is not None:
        cmd.append(f"GEN_DIR={gen}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / "build" / target


@pytest.mark.firmware
def test_c_unit_tests_pass(tmp_path):
    proc = subprocess.run(
        ["make", "-s", "-C", str(FW), f"BUILD_DIR={tmp_path}", "test"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed, failed = map(int, re.search(r"(\d+) passed, (\d+) failed", proc.stdout).groups())
    assert failed == 0 and passed >= 15


def _read_clips(files: list[Path]) -> np.ndarray:
    """int16 wav files as float32 (N, clip_samples), zero-padded / cropped at the end as the C tool does."""
    wav = np.zeros((len(files), CFG.clip_samples), np.float32)
    for i, f in enumerate(files):
        x, _ = sf.read(f, dtype="int16")
        wav[i, : min(len(x), CFG.clip_samples)] = x[: CFG.clip_samples] / 32768.0
    return wav


def _run_features(tool: Path, files: list[Path], tmp_path: Path, *flags: str) -> np.ndarray:
    listing = tmp_path / "clips.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    out = subprocess.run([str(tool), *flags, "--list", str(listing)], capture_output=True, text=True, check=True)
    blocks = out.stdout.split("# ")[1:]
    assert [b.split("\n", 1)[0] for b in blocks] == [str(f) for f in files]
    return np.array([b.split("\n", 1)[1].split() for b in blocks], dtype=np.float64).reshape(len(files), 49, 10)


@pytest.mark.firmware
def test_kws_features_equals_python_on_every_test_clip(mini_root, tmp_path):
    files = [mini_root / f for f in (mini_root / "testing_list.txt").read_text().split()]
    assert len(files) == 558
    wav = _read_clips(files)
    # A realistic input quantization: the feature range of 100 training clips (int8 over [min, max]).
    held_out = set((mini_root / "testing_list.txt").read_text().split()) | set(
        (mini_root / "validation_list.txt").read_text().split()
    )
    train = sorted(p for p in mini_root.glob("[a-z]*/*.wav") if f"{p.parent.name}/{p.name}" not in held_out)[::20][:100]
    train_feats = fe.compute_mfcc(_read_clips(train), CFG)
    lo, hi = float(train_feats.min()), float(train_feats.max())
    scale = (hi - lo) / 255.0
    zero_point = int(round(-128 - lo / scale))
    expected = fe.quantize_features(fe.compute_mfcc(wav, CFG), scale, zero_point).astype(np.int64)
    tool = _build(tmp_path) / "kws_features"
    got = _run_features(tool, files, tmp_path, "--scale", repr(scale), "--zero-point", str(zero_point))
    diff = np.abs(got - expected)
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.999, f"{(diff > 0).sum()} of {diff.size} values differ"


@pytest.mark.firmware
def test_silence_clipping_and_dc_stay_finite_in_c(tmp_path):
    n = np.arange(CFG.clip_samples)
    signals = {
        "silence": np.zeros(CFG.clip_samples, np.int16),
        "square": np.where((n // 8) % 2 == 0, 32767, -32768).astype(np.int16),  # full-scale 1 kHz square
        "dc": np.full(CFG.clip_samples, 20000, np.int16),
    }
    files = []
    for name, x in signals.items():
        files.append(tmp_path / f"{name}.wav")
        sf.write(files[-1], x, CFG.sample_rate_hz, subtype="PCM_16")
    tool = _build(tmp_path) / "kws_features"
    got = _run_features(tool, files, tmp_path, "--float")
    assert np.isfinite(got).all()
    expected = fe.compute_mfcc(np.stack([x / 32768.0 for x in signals.values()]).astype(np.float32), CFG)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    np.testing.assert_allclose(got[0, :, 0], np.sqrt(40) * np.log(1e-6), rtol=1e-6)  # hand value of silence c0


@pytest.mark.firmware
def test_cortex_m4_build_and_footprint(tmp_path, generated):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (make install)")
    fp = firmware_build.frontend_footprint("cortex-m4", generated_dir=generated, cache_dir=tmp_path)
    assert fp["flash_bytes"] == fp["text"] + fp["data"] and fp["ram_bytes"] == fp["data"] + fp["bss"]
    # Hand count of the float32 tables (window 640, DCT 400, twiddles 1024, mel weights) that must be in flash.
    c = (generated / "kws_tables.c").read_text()
    table_bytes = 4 * (640 + 400 + 1024 + len(_c_array(c, "kws_mel_weights")))
    assert fp["objects"]["kws_tables.o"]["text"] >= table_bytes
    assert table_bytes < fp["flash_bytes"] < 64_000
    # RAM holds at least the audio ring (int16), the FFT in/out buffers and the feature ring.
    h = dict(re.findall(r"#define (KWS_\w+) (\S+)", (generated / "kws_settings.h").read_text()))
    assert fp["ram_bytes"] >= 2 * int(h["KWS_AUDIO_RING_SAMPLES"]) + 8 * 1024 + 490
    assert firmware_build.frontend_footprint("cortex-m4", generated_dir=generated, cache_dir=tmp_path) == fp  # cached
    with pytest.raises(KwsError, match="cortex-m4"):
        firmware_build.frontend_footprint("cortex-m7")


@pytest.mark.firmware
@pytest.mark.parametrize("platform", ["arduino", "mbed"])
def test_assemble_project_is_self_contained(tmp_path, generated, platform):
    gen = tmp_path / "gen"
    shutil.copytree(generated, gen)
    (gen / "model_data.h").write_text("extern const unsigned char g_kws_model[16];\n")
    (gen / "model_data.c").write_text('#include "model_data.h"\nconst unsigned char g_kws_model[16] = {0};\n')
    project = firmware_build.assemble_project(tmp_path / "out", "cortex-m4", platform, gen)
    readme = (project / "README.md").read_text()
    if platform == "arduino":
        assert (project / "kws_arduino.ino").is_file() and "arduino:mbed_nano:nano33ble" in readme
        assert "Arduino_TensorFlowLite" in readme
        lib = project
    else:
        assert (project / "main.cpp").is_file() and (project / "mbed_app.json").is_file()
        assert "mbed-tools compile -m DISCO_F746NG -t GCC_ARM -f" in readme
        lib = project / "kws"
    assert "#define KWS_MODEL_ARRAY g_kws_model" in (lib / "kws_model_binding.h").read_text()
    assert (lib / "kws_model_tflm.cpp").is_file()
    # Every C file of the folder compiles on its own includes (the C++ TFLM glue needs TFLM: not here).
    for src in sorted(lib.glob("*.c")):
        proc = subprocess.run(
            ["gcc", "-std=c99", "-fsyntax-only", "-Wall", "-Werror", f"-I{lib}", str(src)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    with pytest.raises(KwsError, match="platform"):
        firmware_build.assemble_project(tmp_path / "x", "cortex-m4", "zephyr", gen)


@pytest.mark.firmware
def test_frontend_self_test_on_qemu_cortex_m4(tmp_path, generated):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (make install)")
    cmd = ["make", "-s", "-C", str(FW), "TARGET=cortex-m4", f"BUILD_DIR={tmp_path}", f"GEN_DIR={generated}", "qemu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"(\d+) frames, (\d+) non-finite, silence c0 ok, ~(\d+) instructions/frame", proc.stdout)
    assert m and m.group(1) == "49" and m.group(2) == "0"
    # A 1024-point FFT alone is ~5 N log2 N = 51k flops: the frame can be neither cheaper nor 10x dearer.
    assert 51_000 < int(m.group(3)) < 510_000


@pytest.mark.firmware
def test_cross_cxx_compiler_has_the_cxx_headers(tmp_path):
    """The Arduino / Mbed glue is C++: Debian's arm-none-eabi-g++ needs libstdc++-arm-none-eabi-newlib for <new>,
    which scripts/install_debian.sh installs with the cross compiler (fails, not skips, when only the C side is
    there: that is the missing install step)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (make install installs it)")
    src = tmp_path / "glue.cpp"
    src.write_text("#include <new>\n#include <cstdint>\nstatic std::uint8_t pool[8];\nint *p = new (pool) int(7);\n")
    done = subprocess.run(
        ["arm-none-eabi-g++", "-mcpu=cortex-m4", "-mthumb", "-std=c++17", "-c", str(src), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr.strip().splitlines()[:2]


# The audio-in prototypes of STM32CubeF7 1.17's stm32746g_discovery_audio.h, the BSP deploy/mbed pins (typed from
# ST's header: the reference main.cpp must compile against), and the little of Mbed OS main.cpp touches.
_CUBE_F7_AUDIO_H = """#pragma once
#include <stdint.h>
#define AUDIO_OK ((uint8_t)0)
#define INPUT_DEVICE_DIGITAL_MICROPHONE_2 ((uint16_t)0x0400)
#define DEFAULT_AUDIO_IN_BIT_RESOLUTION ((uint8_t)16)
#define DEFAULT_AUDIO_IN_CHANNEL_NBR ((uint8_t)2)
#define AUDIO_IN_SAIx_DMAx_IRQ 70
typedef struct { void *hdmarx; } SAI_HandleTypeDef;
#ifdef __cplusplus
extern "C" {
#endif
uint8_t BSP_AUDIO_IN_Init(uint32_t AudioFreq, uint32_t BitRes, uint32_t ChnlNbr);
uint8_t BSP_AUDIO_IN_InitEx(uint16_t InputDevice, uint32_t AudioFreq, uint32_t BitRes, uint32_t ChnlNbr);
uint8_t BSP_AUDIO_IN_Record(uint16_t *pData, uint32_t Size);
uint8_t BSP_AUDIO_IN_SetVolume(uint8_t Volume);
void HAL_DMA_IRQHandler(void *hdma);
#ifdef __cplusplus
}
#endif
"""
_MBED_H = """#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
using namespace std::chrono_literals;
enum { LED1 = 1 };
struct DigitalOut {
    explicit DigitalOut(int) {}
    DigitalOut &operator=(int) { return *this; }
    operator int() const { return 0; }
};
struct Timer { void start() {} std::chrono::microseconds elapsed_time() const { return {}; } };
namespace ThisThread { inline void sleep_for(std::chrono::milliseconds) {} inline void yield() {} }
inline void NVIC_SetVector(int, uint32_t) {}
"""


@pytest.mark.firmware
def test_mbed_main_compiles_against_the_pinned_bsp(generated, tmp_path):
    """deploy/mbed/main.cpp against STM32CubeF7 1.17's audio prototypes, C++17 (what CMakeLists.txt asks): it
    compiles, and it opens the microphone through InitEx with the input device first and the sample rate second.
    The old Mbed-BSP call BSP_AUDIO_IN_Init(device, volume, freq) would also compile against that header, with
    every argument meaning something else, so the call itself is checked too."""
    if shutil.which("arm-none-eabi-g++") is None:
        pytest.skip("arm-none-eabi-g++ not installed (make install installs it)")
    main_cpp = REPO_DEPLOY / "mbed" / "main.cpp"
    text = main_cpp.read_text()
    init = re.search(r"BSP_AUDIO_IN_Init(Ex)?\s*\(([^;]*?)\)\s*!=", text, re.S)
    assert init and init.group(1) == "Ex", "open the microphones with BSP_AUDIO_IN_InitEx (the pinned BSP)"
    args = [a.strip() for a in init.group(2).split(",")]
    assert args[:2] == ["INPUT_DEVICE_DIGITAL_MICROPHONE_2", "KWS_SAMPLE_RATE_HZ"], args
    assert "cxx_std_17" in (REPO_DEPLOY / "mbed" / "CMakeLists.txt").read_text()
    (tmp_path / "stm32746g_discovery_audio.h").write_text(_CUBE_F7_AUDIO_H)
    (tmp_path / "mbed.h").write_text(_MBED_H)
    done = subprocess.run(
        ["arm-none-eabi-g++", "-mcpu=cortex-m7", "-mthumb", "-std=c++17", "-fsyntax-only", "-Werror=narrowing"]
        + [f"-I{d}" for d in (tmp_path, generated, FW / "src")]
        + [str(main_cpp)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr.strip().splitlines()[:4]


def test_mbed_readme_generates_the_tflm_tree_from_the_tflm_root():
    """create_tflm_tree.py runs `make -f <tensorflow_root>tensorflow/lite/micro/tools/make/Makefile` (tflite-micro's
    project_generation script), so started from the project folder with no --tensorflow_root it finds no
    Makefile: the README's command must start it in the tflite-micro root or pass --tensorflow_root ending in /."""
    readme = (REPO_DEPLOY / "mbed" / "README.md").read_text()
    command = " ".join(
        line.strip().rstrip("\\")
        for line in readme.splitlines()
        if "create_tflm_tree" in line or "--makefile_options" in line
    )
    assert "create_tflm_tree.py" in command
    runs_in_root = re.search(r"cd tflite-micro\s*&&\s*python3 tensorflow/lite/micro/tools/project_generation/", command)
    root_flag = re.search(r"--tensorflow_root[= ]\S+/(\s|$)", command)
    assert runs_in_root or root_flag, command
    assert "STM32CubeF7 1.17" in readme
