"""kws: grow small, accurate keyword spotters by splitting steepest descent and put them on microcontrollers.

Module map (one noun per module) and the dependency rule: imports point DOWN this list only, never up, and
there are no import cycles. A lazy import inside a function counts like any other. A package (cli, engine, export,
splitting) is one entry, whose __init__ is its public face and lists its own modules; tests/test_layering.py reads
this list (one name per line at a 4-space indent) and fails on any import that breaks it.

    errors       one-line user errors (KwsError) raised by every layer, printed by the CLI; known_fields for
                 every config record
    files        atomic file writes (temp sibling, fsync, the umask's mode, os.replace): the one way to write
    frontend     FrontendConfig and the MFCC frontend (numpy reference + batched torch); the tables the C
                 frontend and the exporter reuse. The single source of truth for features.
    device       DeviceConfig (how the device streams and recognizes) and PLATFORMS (the board shells of deploy/),
                 torch-free: the CLI reads its defaults and choices here
    augment      AugmentConfig and the Augmenter: training noise mix + time shift, batched through TorchFrontend
    audio        reading wav files robustly (resample, downmix, pad/crop, reasons for unusable files) and the
                 record of what a loader skipped or changed (audio_issues.json)
    data         Speech Commands layout: splits, 12-class task, test-set loader, --words check
    features     MFCC features of a split, cached on disk (keyed by config, clip list and waveforms)
    download     fetching and safely extracting the official archives
    synth        an offline Speech-Commands-layout dataset spoken by espeak-ng
    firmware     generated C settings/tables for the device (write_settings), `python -m kws.firmware`
    firmware_build  firmware project assembly and the Cortex-M4 frontend footprint build, `python -m
                 kws.firmware_build`
    models       ArchSpec (serializable DS-CNN description), presets, create()
    cost         parameters, MACs and activation bytes computed from an ArchSpec alone
    engine       package: our own int8 engine, the exported .tflite as generated C over firmware_stub/engine
    distributed  torchrun helpers: rank/world, process-group init, device choice and check, per-rank batch sharding
    tblog        TensorBoard scalar event files for a run's tb/ folder, without importing TensorFlow
    checkpoint   run directories: weights + JSON configs (written through files), loading a run back
    accuracy     evaluate() / mean_loss() / confusion_summary(): the one accuracy routine of training, growing, eval
    recipe       TrainConfig and GrowConfig (torch-free: the CLI reads its defaults and choices here), the
                 optimizer and the per-batch lr schedule of one training phase
    resume       the run records a resume reads and checks (its settings against typed flags, rounds, temp files)
    train        train_one_epoch / fit, the `kws train` job, DistributedDataParallel
    splitting    package: splitting steepest descent (capture hooks, dense and Lanczos solvers, pass presets,
                 split surgery, budget-aware selection); its __init__ is the face grow uses
    grow         the growth loop (`kws grow`), its rounds, checkpoints and growth report data (JSON, Markdown)
    export       package: Keras rebuild, int8/float TFLite, ONNX, TFLM arena, C arrays, targets, footprint report
    predict      predictors for run directories and TFLite files, the `kws eval` / `kws predict` jobs
    devicecheck  after `kws grow`: the grown model exported with the engine, measured in QEMU, beside its
                 budgets and the figures growth predicted (device_check.json)
    stream       streaming frontend + posterior-smoothing recognizer over long recordings
    streamsynth  long recordings from one split's clips at known times over split-disjoint background noise
    streameval   MLPerf-Tiny-style stream scoring (miss rate, FA/h), threshold sweeps, DET curve, operating point
    streamdevice the device app (generated engine) over a recording: host build and QEMU image, its responses
    streamreport the `kws stream-eval` job: both streams, the chosen operating point, its files and HTML
    report       the growth report (HTML + PNG)
    demo         the pipeline end to end on offline data (`make demo`)
    cli          package: argparse front end (`kws <verb>`); imports everything above, nothing but __main__ imports it
    __main__     `python -m kws`
"""

__version__ = "0.1.0"
