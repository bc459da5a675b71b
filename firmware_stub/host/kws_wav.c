#include "kws_wav.h"

#include <stdio.h>
#include <string.h>

#include "kws_settings.h"

static uint32_t le32(const unsigned char *b) { return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24; }
static uint16_t le16(const unsigned char *b) { return (uint16_t)(b[0] | b[1] << 8); }

static long fail(FILE *f, const char *path, const char *why) {
    fprintf(stderr, "kws_wav: %s: %s\n", path, why);
    if (f) fclose(f);
    return -1;
}

long kws_wav_read(const char *path, int16_t *out, long max_samples) {
    unsigned char hdr[12], chunk[8], fmt[16];
    int have_fmt = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(NULL, path, "cannot open");
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4))
        return fail(f, path, "not a RIFF/WAVE file");
    while (fread(chunk, 1, 8, f) == 8) {
        uint32_t size = le32(chunk + 4);
        if (!memcmp(chunk, "fmt ", 4)) {
            if (size < 16 || fread(fmt, 1, 16, f) != 16) return fail(f, path, "short fmt chunk");
            if (fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR)) return fail(f, path, "truncated");
            if (le16(fmt) != 1 || le16(fmt + 2) != 1 || le16(fmt + 14) != 16 || le32(fmt + 4) != KWS_SAMPLE_RATE_HZ)
                return fail(f, path, "need 16-bit PCM mono at the settings' sample rate (convert it first)");
            have_fmt = 1;
        } else if (!memcmp(chunk, "data", 4)) {
            if (!have_fmt) return fail(f, path, "data chunk before fmt chunk");
            long n = 0;
            unsigned char s[2];
            while (n < max_samples && (uint32_t)n * 2 < size && fread(s, 1, 2, f) == 2) out[n++] = (int16_t)le16(s);
            fclose(f);
            return n;
        } else if (fseek(f, (long)(size + (size & 1)), SEEK_CUR)) {
            return fail(f, path, "truncated chunk");
        }
    }
    return fail(f, path, "no data chunk");
}
