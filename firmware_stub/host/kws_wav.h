/* Host-only WAV reading for the tools: 16-bit PCM mono at KWS_SAMPLE_RATE_HZ, as the dataset ships. */
#ifndef KWS_WAV_H
#define KWS_WAV_H

#include <stdint.h>

/* Reads up to max_samples samples of path into out (caller-owned); returns the number read (shorter files leave
   the rest untouched), or -1 after printing one line to stderr naming the file and the problem. */
long kws_wav_read(const char *path, int16_t *out, long max_samples);

#endif /* KWS_WAV_H */
