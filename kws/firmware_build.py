"""Turning generated files into firmware: ready-to-build board projects and the frontend's Cortex-M footprint.

assemble_project() combines the files kws.firmware generates (kws_settings.h, kws_tables.h/.c), the export's
network (engine "kws": the generated kws_net.c/.h and firmware_stub/engine's kernels, no TFLM library; engine
"tflm": model_data.h/.c and the TFLM backend), firmware_stub/ sources and a platform shell (deploy/arduino or
deploy/mbed) into a folder that builds with the board's own tool. frontend_footprint() builds the frontend and
recognizer with arm-none-eabi-gcc and reports their linked flash/RAM (cached by content hash). `python -m
kws.firmware_build` prints the footprint as JSON. This module imports kws.firmware, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kws.device import ENGINES, PLATFORMS
from kws.errors import KwsError
from kws.files import atomic_write_json, atomic_write_text
from kws.firmware import FIRMWARE_DIR, REPO, write_default_settings

DEPLOY_DIR = REPO / "deploy"
ENGINE_NOTE = (
    "> **Engine kws:** the network is the generated `kws_net.c` over the C99 kernels `kws_nn_*.c` (kws.engine); this "
    "project needs no TensorFlow Lite Micro library or sources: skip the steps for them below.\n\n"
)
# Template lines that only a TFLM build needs (dropped for engine "kws"; assemble_project checks they exist).
TFLM_ONLY_LINES = {
    "kws_arduino.ino": (
        '#include <TensorFlowLite.h>  // library "Arduino_TensorFlowLite": makes arduino-cli add TFLM to the build',
    ),
    "CMakeLists.txt": (
        "file(GLOB_RECURSE TFLM_SOURCES tflm/*.cc tflm/*.c)",
        "target_compile_definitions(${APP_TARGET} PRIVATE TF_LITE_STATIC_MEMORY CMSIS_NN)",
    ),
}


def _copy_sources(dest: Path, generated_dir: Path, platform_dir: Path, flat: bool, engine: str) -> None:
    """Portable sources + the model backend + generated files + platform shell into dest (flat, or kws/ for Mbed)."""
    lib = dest if flat else dest / "kws"
    lib.mkdir(parents=True, exist_ok=True)
    for f in sorted((FIRMWARE_DIR / "src").glob("*.[ch]")):
        shutil.copy2(f, lib / f.name)
    if engine == "tflm":
        shutil.copy2(FIRMWARE_DIR / "tflm" / "kws_model_tflm.cpp", lib / "kws_model_tflm.cpp")
    else:
        for f in sorted((FIRMWARE_DIR / "engine").glob("kws_nn*.[ch]")):
            shutil.copy2(f, lib / f.name)
    skip = {"model_data.h", "model_data.c"} if engine == "kws" else {"kws_net.h", "kws_net.c"}
    for f in sorted(generated_dir.iterdir()):
        if f.suffix in (".h", ".c", ".cc", ".cpp") and f.name not in skip:
            shutil.copy2(f, lib / f.name)
    for f in sorted(platform_dir.iterdir()):
        if f.is_file() and f.name != "README.md":
            text = f.read_text()
            if engine == "kws":
                for line in TFLM_ONLY_LINES.get(f.name, ()):
                    if line not in text:
                        raise KwsError(f"assemble_project: {f} no longer has the TFLM line {line!r}")
                    text = text.replace(line + "\n", "")
            atomic_write_text(dest / f.name, text)


def _model_binding(generated_dir: Path) -> str:
    """kws_model_binding.h: the export's model array name, so the TFLM backend needs no hand edit."""
    header = generated_dir / "model_data.h"
    if not header.is_file():
        raise KwsError(f"assemble_project: {header} missing; run `kws export` to generate the model's C array")
    m = re.search(r"unsigned\s+char\s+(\w+)\s*\[", header.read_text())
    if not m:
        raise KwsError(f"assemble_project: no `unsigned char NAME[]` array declared in {header}")
    first = (generated_dir / "kws_settings.h").read_text().splitlines()[0]
    return (
        f"{first}\n#ifndef KWS_MODEL_BINDING_H\n#define KWS_MODEL_BINDING_H\n"
        f'#include "model_data.h"\n#define KWS_MODEL_ARRAY {m.group(1)}\n#endif\n'
    )


def assemble_project(
    out_dir: str | os.PathLike,
    target: str,
    platform: str = "arduino",
    generated_dir: str | os.PathLike | None = None,
    engine: str = "tflm",
) -> Path:
    """Assemble a ready-to-build folder for platform from an export's generated_dir; returns the project folder.

    generated_dir must hold kws_settings.h, kws_tables.h/.c (write_settings) and, for engine "tflm",
    model_data.h/.c (the export); for engine "kws", kws_net.h/.c (kws.engine), and no TFLM file is used.
    Arduino: out_dir/kws_arduino/ is a sketch (all sources flat beside kws_arduino.ino). Mbed: out_dir/kws_mbed/
    with main.cpp, mbed_app.json, CMakeLists.txt and the sources under kws/. Each gets a README with the exact
    build and flash commands. target is recorded in the README (the platform fixes the board).
    """
    if platform not in PLATFORMS:
        raise KwsError(f"--platform {platform!r}: choose one of {', '.join(PLATFORMS)}")
    gen = Path(generated_dir) if generated_dir else None
    if gen is None or not (gen / "kws_settings.h").is_file():
        raise KwsError(f"assemble_project: {gen}/kws_settings.h missing; write_settings() into that folder first")
    if engine not in ENGINES:
        raise KwsError(f"--engine {engine!r}: choose kws or tflm")
    if engine == "kws" and not (gen / "kws_net.c").is_file():
        raise KwsError(f"assemble_project: {gen}/kws_net.c missing; run `kws export` (engine kws) into that folder")
    dest = Path(out_dir) / f"kws_{platform}"
    if dest.exists():
        shutil.rmtree(dest)
    _copy_sources(dest, gen, DEPLOY_DIR / platform, flat=platform == "arduino", engine=engine)
    if engine == "tflm":
        binding = _model_binding(gen)
        where = "kws_model_binding.h" if platform == "arduino" else "kws/kws_model_binding.h"
        atomic_write_text(dest / where, binding)
    readme = (DEPLOY_DIR / platform / "README.md").read_text()
    note = ENGINE_NOTE if engine == "kws" else ""
    head = f"<!-- assembled by kws.firmware for target {target}, engine {engine} -->\n"
    title, _, rest = readme.partition("\n\n")
    atomic_write_text(dest / "README.md", f"{head}{title}\n\n{note}{rest}")
    return dest


def _source_digest(gen_dir: Path, target: str) -> str:
    h = hashlib.sha256(target.encode())
    for root in (FIRMWARE_DIR / "src", FIRMWARE_DIR / "m4", gen_dir):
        for f in sorted(root.glob("*")):
            if f.is_file() and f.suffix in (".c", ".h", ".ld"):
                h.update(f.name.encode() + f.read_bytes())
    h.update((FIRMWARE_DIR / "Makefile").read_bytes())
    return h.hexdigest()[:16]


def _parse_size(text: str) -> dict[str, dict[str, int]]:
    """arm-none-eabi-size -B output -> {file name: {text, data, bss}}."""
    rows = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6:
            rows[Path(parts[5]).name] = dict(text=int(parts[0]), data=int(parts[1]), bss=int(parts[2]))
    return rows


def frontend_footprint(
    target: str = "cortex-m4",
    generated_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Flash and RAM of the frontend + rings + recognizer (+ libm) as linked by arm-none-eabi-gcc -Os.

    A probe program using them (m4/size_main.c) minus an empty one with the same start-up (m4/base_main.c):
    flash_bytes = text + data, ram_bytes = data + bss (static buffers; stack not included). generated_dir: an
    export's settings (default: default settings). Cached under cache_dir by a hash of sources and settings.
    """
    if target != "cortex-m4":
        raise KwsError(f"frontend_footprint: target {target!r} is not built here; only cortex-m4 is")
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
        raise KwsError("frontend_footprint: arm-none-eabi-gcc or make not found; run `make install` (Debian)")
    cache = Path(cache_dir or os.environ.get("KWS_CACHE_DIR", Path.home() / ".cache" / "kws")) / "firmware"
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(generated_dir) if generated_dir else Path(tmp)
        if not generated_dir:
            write_default_settings(gen)
        key = _source_digest(gen, target)
        hit = cache / f"footprint_{key}.json"
        if hit.is_file():
            return json.loads(hit.read_text())
        build = Path(tmp) / "build"
        cmd = [
            "make",
            "-s",
            "-C",
            str(FIRMWARE_DIR),
            f"TARGET={target}",
            f"GEN_DIR={gen}",
            f"BUILD_DIR={build}",
            "size",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise KwsError(f"frontend_footprint: `{' '.join(cmd)}` failed: {proc.stderr.strip().splitlines()[-1:]}")
        sizes = _parse_size((build / target / "size.txt").read_text())
    probe, base = sizes.pop("kws_size.elf"), sizes.pop("kws_base.elf")
    delta = {k: probe[k] - base[k] for k in ("text", "data", "bss")}
    result = dict(
        flash_bytes=delta["text"] + delta["data"],
        ram_bytes=delta["data"] + delta["bss"],
        **delta,
        target=target,
        objects=sizes,
        source_digest=key,
    )
    atomic_write_json(hit, result, indent=1)
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m kws.firmware_build [--target T] [--generated-dir DIR]`: the frontend's footprint as JSON."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m kws.firmware_build", description=frontend_footprint.__doc__)
    parser.add_argument("--target", default="cortex-m4", help="core to build for (default: cortex-m4)")
    parser.add_argument("--generated-dir", help="an export's folder of generated files (default: default settings)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(frontend_footprint(args.target, args.generated_dir), indent=1))
    except KwsError as e:
        print(f"kws.firmware_build: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
