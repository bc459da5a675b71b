"""kws: grow small, accurate keyword spotters by splitting steepest descent and put them on microcontrollers.

Module map (one noun per module) and the dependency rule: imports point DOWN this list only, never up.

    errors       one-line user errors (KwsError) raised by every layer, printed by the CLI; known_fields for
                 every config record
    files        atomic file writes (temp sibling, fsync, the umask's mode, os.replace): the one way to write
    frontend     FrontendConfig and the MFCC frontend (numpy reference + batched torch); the tables the C
                 frontend and the exporter reuse. The single source of truth for features.
    augment      AugmentConfig and the Augmenter: training noise mix + time shift, batched through TorchFrontend
    audio        reading wav files robustly (resample, downmix, pad/crop, reasons for unusable files) and the
                 record of what a loader skipped or changed (audio_issues.json)
    data         Speech Commands layout: splits, 12-class task, test-set loader, --words check
    features     MFCC features of a split, cached on disk (keyed by config, clip list and waveforms)
    download     fetching and safely extracting the official archives
    synth        an offline Speech-Commands-layout dataset spoken by espeak-ng
    firmware     generated C settings/tables for the device (DeviceConfig, write_settings), `python -m kws.firmware`
    firmware_build  firmware project assembly and the Cortex-M4 frontend footprint build (firmware re-exports
                 them lazily, on first access, never at import)
    models       ArchSpec (serializable DS-CNN description), presets, create()
    cost         parameters, MACs and activation bytes computed from an ArchSpec alone
    distributed  torchrun helpers: rank/world, process-group init, device choice and check, per-rank batch sharding
    tblog        TensorBoard scalar event files for a run's tb/ folder, without importing TensorFlow
    checkpoint   run directories: weights + JSON configs (written through files), loading a run back
    predict      evaluate() / mean_loss(), predictors for run directories and TFLite files, `kws eval/predict`
    recipe       TrainConfig and GrowConfig (torch-free: the CLI reads its defaults and choices here), the
                 optimizer and the per-batch lr schedule of one training phase
    resume       the run records a resume reads and checks (its settings against typed flags, rounds, temp files)
    train        train_one_epoch / fit, the `kws train` job, DistributedDataParallel
    split_apply  split(): apply a splitting plan, widening a DS-CNN (splitting re-exports it)
    split_rows   which (clip, position) rows the splitting pass keeps (uniform or by importance), and their gathers
    split_presets  pass presets (SplitPassConfig, FAST, WIDE, EXACT, resolve_preset) and the pass's clips
                 (pass_batches: stratified or importance-drawn)
    splitting    the exact splitting matrices S = S_own + S_dw, eigen-decomposition, pass_eigs (re-exports split()
                 and the presets)
    split_lanczos  lambda_min / v_min without forming S: batched Lanczos on matrix-free S v products; the one
                 upward import: splitting.pass_eigs calls it lazily, inside the function, for the WIDE preset
    selection    budget-aware greedy choice of units to split
    grow         the growth loop (`kws grow`), its rounds, checkpoints and growth report data
    export       Keras rebuild, int8/float TFLite, ONNX, TFLM arena, C arrays, targets, footprint report
    engine       our own int8 engine: the exported .tflite as generated C over firmware_stub/engine kernels
    stream       streaming frontend + posterior-smoothing recognizer over long recordings
    streamsynth  long recordings from one split's clips at known times over split-disjoint background noise
    streameval   MLPerf-Tiny-style stream scoring (miss rate, FA/h), threshold sweeps, DET curve, operating point
    streamreport the `kws stream-eval` job: both streams, the chosen operating point, its files and HTML
    report       the growth report (HTML + PNG)
    demo         the pipeline end to end on offline data (`make demo`)
    cli          argparse front end (`kws <verb>`); imports everything above, nothing imports it
"""

__version__ = "0.1.0"
