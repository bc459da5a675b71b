"""Our own int8 engine: the exported .tflite turned into straight-line C over hand-written kernels.

Modules (imports point down this list):
    graph     the .tflite read through LiteRT's flatbuffer schema: tensors, quantization, ops
    quant     TFLite's requantization parameters and tabulated activations, computed as its Prepare() does
    layers    the Layer (one kernel call) and the weighted layers' builders, constants in the layouts
              firmware_stub/engine reads
    elementwise  LOGISTIC / SiLU / MUL / HARD_SWISH layers (256-entry tables where exact)
    lower     a graph to its layers in execution order
    plan      the static memory plan (liveness, in place where exact)
    codegen   kws_net.h / kws_net.c implementing firmware_stub/src/kws_model.h
    build     host and Cortex-M builds of the generated network, QEMU runs (instructions per inference)
    qemu      the whole app image (frontend, ring, network, recognizer) for an emulated core, and its run
    measure   the app's flash and RAM (linked size probes) and time (QEMU) on one core: what `kws export` reports
The C kernels live in firmware_stub/engine (kws_nn.h lists them).
"""

from kws.engine.codegen import Network, generate

__all__ = ["Network", "generate"]
