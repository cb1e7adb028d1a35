/*
 * test_support.h -- what the standalone C tests share: a check counter that reports the first failures,
 * and a seeded random generator (xorshift64*, fixed seed: runs are reproducible).
 */
#ifndef FASTCONV_TEST_SUPPORT_H
#define FASTCONV_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include "fastconv.h"

static int failures = 0, checks = 0;

static void expect(int ok, const char *what, const char *where)
{
    checks++;
    if (!ok) {
        failures++;
        if (failures < 30)
            fprintf(stderr, "FAIL: %s [%s]\n", what, where);
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* uniform in [-1, 1) */
static double rng_uniform(void) { return (double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }
/* uniform in [lo, hi] */
static fc_index rng_int(fc_index lo, fc_index hi) { return lo + (fc_index)(rng_next() % (uint64_t)(hi - lo + 1)); }

#endif /* FASTCONV_TEST_SUPPORT_H */
