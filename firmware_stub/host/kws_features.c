/* kws_features [--scale S] [--zero-point Z] [--float] [--list FILE] [FILE.wav ...]
   Prints the int8 features of each 1 s clip exactly as the device computes them (streaming frontend, hop by hop,
   then kws_quantize): KWS_NUM_FRAMES lines of KWS_NUM_COEFFICIENTS integers, frame-major. Clips shorter than
   KWS_CLIP_SAMPLES are zero-padded at the end, longer ones cropped. With several clips (or --list, one path per
   line) each block is preceded by "# PATH". --float prints the MFCCs before quantization instead.
   Scale and zero point default to KWS_INPUT_SCALE / KWS_INPUT_ZERO_POINT of the generated settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kws_frontend.h"
#include "kws_wav.h"

static kws_frontend_t s_fe;
static int16_t s_clip[KWS_CLIP_SAMPLES];

static int features(const char *path, float scale, int zp, int as_float, int header) {
    float mfcc[KWS_NUM_COEFFICIENTS];
    memset(s_clip, 0, sizeof(s_clip));
    if (kws_wav_read(path, s_clip, KWS_CLIP_SAMPLES) < 0) return 1;
    if (header) printf("# %s\n", path);
    kws_frontend_init(&s_fe);
    for (int start = 0; start + KWS_HOP_SAMPLES <= KWS_CLIP_SAMPLES; start += KWS_HOP_SAMPLES) {
        if (!kws_frontend_push_hop(&s_fe, &s_clip[start], mfcc)) continue;
        for (int c = 0; c < KWS_NUM_COEFFICIENTS; ++c) {
            const char *sep = c + 1 < KWS_NUM_COEFFICIENTS ? " " : "\n";
            if (as_float) printf("%.9g%s", mfcc[c], sep);
            else printf("%d%s", kws_quantize(mfcc[c], scale, zp), sep);
        }
    }
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: kws_features [--scale S] [--zero-point Z] [--float] [--list FILE] [FILE.wav ...]\n");
    return 2;
}

int main(int argc, char **argv) {
    float scale = KWS_INPUT_SCALE;
    int zp = KWS_INPUT_ZERO_POINT, as_float = 0, first = 1, nfiles = 0, failures = 0;
    const char *list = NULL;
    while (first < argc && !strncmp(argv[first], "--", 2)) {
        if (!strcmp(argv[first], "--float")) {
            as_float = 1;
            first += 1;
            continue;
        }
        if (first + 1 >= argc) return usage();
        if (!strcmp(argv[first], "--scale")) scale = strtof(argv[first + 1], NULL);
        else if (!strcmp(argv[first], "--zero-point")) zp = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "--list")) list = argv[first + 1];
        else return usage();
        first += 2;
    }
    if (!(scale > 0) || zp < -128 || zp > 127) {
        fprintf(stderr, "kws_features: --scale must be > 0 and --zero-point in [-128, 127]\n");
        return 2;
    }
    nfiles = argc - first;
    if (!list && nfiles == 0) return usage();
    int header = list != NULL || nfiles > 1;
    for (int i = first; i < argc; ++i) failures += features(argv[i], scale, zp, as_float, header);
    if (list) {
        char line[4096];
        FILE *f = fopen(list, "r");
        if (!f) {
            fprintf(stderr, "kws_features: --list %s: cannot open\n", list);
            return 2;
        }
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0]) failures += features(line, scale, zp, as_float, header);
        }
        fclose(f);
    }
    return failures ? 1 : 0;
}
