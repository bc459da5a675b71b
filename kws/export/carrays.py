"""The .tflite flatbuffer as a C array in flash: model_data.h / model_data.c.

TFLite Micro reads the flatbuffer in place, so the array must be 16-byte aligned (flatbuffer tables hold 8-byte
and SIMD-loaded fields) and const (so the linker keeps it in flash, not RAM). The header declares the array and
a size constant; KWS_ALIGN16 picks C11 _Alignas, C++11 alignas or the GCC/Clang attribute so the files build
as C99, C11 and C++. The bytes equal the .tflite file exactly (tests/test_export_carrays.py compiles and dumps).
"""

from __future__ import annotations

from pathlib import Path

from kws.files import atomic_write_text

ARRAY_NAME = "kws_model_data"
BYTES_PER_LINE = 12

_ALIGN_MACRO = """#ifndef KWS_ALIGN16
#if defined(__cplusplus) && __cplusplus >= 201103L
#define KWS_ALIGN16 alignas(16)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define KWS_ALIGN16 _Alignas(16)
#else
#define KWS_ALIGN16 __attribute__((aligned(16)))
#endif
#endif"""


def _hex_lines(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), BYTES_PER_LINE):
        chunk = data[i : i + BYTES_PER_LINE]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    return "\n".join(lines)


def header_text(banner: str, size: int, name: str = ARRAY_NAME) -> str:
    guard = f"{name.upper()}_H"
    return f"""/* {banner} */
/* Contract: {name} is the int8 TFLite flatbuffer, read in place by tflite::GetModel(); it lives in flash,
   is 16-byte aligned and never written. {name}_len is its size in bytes. */
#ifndef {guard}
#define {guard}

{_ALIGN_MACRO}

#define {name.upper()}_LEN {size}u

#ifdef __cplusplus
extern "C" {{
#endif

extern const unsigned char {name}[{name.upper()}_LEN];
extern const unsigned int {name}_len;

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""


def source_text(banner: str, data: bytes, name: str = ARRAY_NAME, header: str = "model_data.h") -> str:
    return f"""/* {banner} */
#include "{header}"

KWS_ALIGN16 const unsigned char {name}[{name.upper()}_LEN] = {{
{_hex_lines(data)}
}};

const unsigned int {name}_len = {name.upper()}_LEN;
"""


def write_model_array(out_dir: str | Path, data: bytes, banner: str, stem: str = "model_data") -> list[Path]:
    """Write <stem>.h and <stem>.c holding `data`; banner is the first-line comment (generated from which model)."""
    if "*/" in banner or "\n" in banner:
        raise ValueError("banner must be one line without '*/'")
    out_dir = Path(out_dir)
    h = atomic_write_text(out_dir / f"{stem}.h", header_text(banner, len(data)))
    c = atomic_write_text(out_dir / f"{stem}.c", source_text(banner, data, header=f"{stem}.h"))
    return [h, c]
