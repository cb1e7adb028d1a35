/*
 * test_conv_chain.c -- standalone check of conv_chain.c: a chain of blocks (convolution, optional ReLU,
 * optional max pool) gives the bits of its layers run one by one (fc_conv2d_forward, fc_relu_forward,
 * fc_max_pool2d_forward), whatever the thread count and the batch.
 *
 * Build and run (from the repository root; the chain calls into every kernel family):
 *     gcc -O2 -std=gnu99 -fopenmp -ffp-contract=fast -fno-math-errno -Isrc_c -Itests/c \
 *         tests/c/test_conv_chain.c src_c/?*.c -lm -o /tmp/test_conv_chain && /tmp/test_conv_chain
 * (-Itests/c lets fc_template.h include this file again for float and double.) Add
 * -fsanitize=address,undefined for the sanitizer run. Exit status 0 iff every check passed.
 *
 * Checked: LeNet-5's two blocks and random chains of 1-3 blocks (kernels 1-5, strides 1-2, padding,
 * 1-40 output channels so that direct and im2col kernels both run, any algo), float and double, every
 * SIMD level the CPU has, 1, 2 and 3 threads; batches 0-9 and batches whose last group takes a
 * remainder image; NaN and -inf in the input; sentinels after y; FC_EINVAL on bad arguments.
 */
#ifndef FC_TEMPLATE_PASS

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "test_support.h"

static fc_index out_len(fc_index in, fc_index k, fc_index stride, fc_index pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* A block's geometry, chained to an input of (channels, h, w); pool only when its output is >= 1x1. */
static fc_conv_block make_block(fc_index channels, fc_index h, fc_index w, fc_index k, fc_index kernel,
                                fc_index stride, fc_index pad, fc_conv_algo algo, int relu, int pool,
                                fc_index pool_kernel, fc_index pool_pad)
{
    fc_conv_block b;
    memset(&b, 0, sizeof b);
    b.conv = (fc_conv_shape){ 0, channels, h, w, k, kernel, kernel, stride, stride, pad, pad, 0, 0 };
    b.conv.out_h = out_len(h, kernel, stride, pad);
    b.conv.out_w = out_len(w, kernel, stride, pad);
    b.algo = algo;
    b.relu = relu;
    b.pool = pool && b.conv.out_h >= pool_kernel && b.conv.out_w >= pool_kernel;
    if (b.pool) {
        b.pool_shape = (fc_pool_shape){ 0, k, b.conv.out_h, b.conv.out_w, pool_kernel, pool_kernel,
                                        2, 2, pool_pad, pool_pad, 0, 0 };
        b.pool_shape.out_h = out_len(b.conv.out_h, pool_kernel, 2, pool_pad);
        b.pool_shape.out_w = out_len(b.conv.out_w, pool_kernel, 2, pool_pad);
    }
    return b;
}

static void block_output(const fc_conv_block *b, fc_index *channels, fc_index *h, fc_index *w)
{
    *channels = b->conv.out_channels;
    *h = b->pool ? b->pool_shape.out_h : b->conv.out_h;
    *w = b->pool ? b->pool_shape.out_w : b->conv.out_w;
}

/* LeNet-5's convolutions: 1x28x28 -> conv 6@5x5 p2, ReLU, pool 2 -> conv 16@5x5, ReLU, pool 2. */
static int lenet_chain(fc_conv_block *blocks)
{
    blocks[0] = make_block(1, 28, 28, 6, 5, 1, 2, FC_ALGO_AUTO, 1, 1, 2, 0);
    blocks[1] = make_block(6, 14, 14, 16, 5, 1, 0, FC_ALGO_AUTO, 1, 1, 2, 0);
    return 2;
}

static int random_chain(fc_conv_block *blocks)
{
    const int count = (int)rng_int(1, 3);
    fc_index channels = rng_int(1, 6), h = rng_int(3, 16), w = rng_int(3, 16);
    for (int i = 0; i < count; i++) {
        const fc_index smaller_side = h < w ? h : w;
        const fc_index kernel = rng_int(1, smaller_side < 5 ? smaller_side : 5), stride = rng_int(1, 2);
        const fc_index pad = rng_int(0, (kernel - 1) / 2 + 1);
        const fc_index k = rng_int(0, 3) == 0 ? rng_int(17, 40) : rng_int(1, 16);
        const fc_conv_algo algo = (fc_conv_algo)rng_int(0, 2);
        const fc_index pool_kernel = rng_int(2, 3);
        blocks[i] = make_block(channels, h, w, k, kernel, stride, pad, algo, (int)rng_int(0, 1),
                               (int)rng_int(0, 1), pool_kernel, rng_int(0, pool_kernel / 2));
        block_output(&blocks[i], &channels, &h, &w);
        if (h < 3 || w < 3)
            return i + 1;
    }
    return count;
}

#define FC_TEMPLATE_FILE "test_conv_chain.c"
#include "fc_template.h"

int main(void)
{
    fc_simd_level levels[3] = { FC_SIMD_SCALAR };
    int level_count = 1;
    if (fc_simd_best() >= FC_SIMD_AVX2)
        levels[level_count++] = FC_SIMD_AVX2;
    if (fc_simd_best() >= FC_SIMD_AVX512)
        levels[level_count++] = FC_SIMD_AVX512;

    fc_conv_block blocks[3];
    for (int l = 0; l < level_count; l++) {
        const int count = lenet_chain(blocks);
        /* f32 groups of 13 images, f64 of 6: 66 and 67 leave a remainder image in one of them */
        const fc_index batches[] = { 0, 1, 2, 3, 64, 66, 67 };
        for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
            check_chain_f32("lenet", levels[l], count, blocks, batches[i]);
            check_chain_f64("lenet", levels[l], count, blocks, batches[i]);
        }
    }
    for (int trial = 0; trial < 60; trial++) {
        const int count = random_chain(blocks);
        const fc_index batch = rng_int(0, 9);
        for (int l = 0; l < level_count; l++) {
            check_chain_f32("random", levels[l], count, blocks, batch);
            check_chain_f64("random", levels[l], count, blocks, batch);
        }
    }
    check_bad_arguments_f32();
    check_bad_arguments_f64();
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

#else /* FC_TEMPLATE_PASS: the typed tests, `real` is float or double */

#define SENTINELS 16

static void FC_FN(fill)(real *v, fc_index count)
{
    for (fc_index i = 0; i < count; i++) {
        const uint64_t pick = rng_next() % 97;
        v[i] = pick == 0 ? (real)NAN : pick == 1 ? (real)-INFINITY : (real)rng_uniform();
    }
}

/* Equal bits, or both NaN. */
static int FC_FN(same)(const real *a, const real *b, fc_index count)
{
    for (fc_index i = 0; i < count; i++)
        if (memcmp(&a[i], &b[i], sizeof(real)) != 0 && !(isnan(a[i]) && isnan(b[i])))
            return 0;
    return 1;
}

/* y of the chain computed layer by layer, as the layers' own kernels run it. */
static int FC_FN(layer_by_layer)(const fc_ctx *ctx, fc_index batch, int count, const fc_conv_block *blocks,
                                 const real *x, real *y)
{
    const real *in = x;
    real *owned = NULL;
    int status = FC_OK;
    if (batch == 0)  /* the layers' kernels take batches of one image or more */
        return FC_OK;
    for (int i = 0; i < count && status == FC_OK; i++) {
        const fc_conv_block *b = &blocks[i];
        fc_conv_shape conv = b->conv;
        conv.batch = batch;
        const fc_index conv_count = batch * conv.out_channels * conv.out_h * conv.out_w;
        real *conv_out = malloc((size_t)(conv_count > 0 ? conv_count : 1) * sizeof(real));
        status = FC_FN(fc_conv2d_forward)(ctx, &conv, b->algo, in, (const real *)b->weight,
                                          (const real *)b->bias, conv_out);
        if (status == FC_OK && b->relu)
            status = FC_FN(fc_relu_forward)(ctx, conv_count, conv_out, conv_out);
        real *out = conv_out;
        if (status == FC_OK && b->pool) {
            fc_pool_shape pool = b->pool_shape;
            pool.batch = batch;
            const fc_index pool_count = batch * pool.channels * pool.out_h * pool.out_w;
            out = malloc((size_t)(pool_count > 0 ? pool_count : 1) * sizeof(real));
            int64_t *indices = malloc((size_t)(pool_count > 0 ? pool_count : 1) * sizeof(int64_t));
            status = FC_FN(fc_max_pool2d_forward)(ctx, &pool, conv_out, out, indices);
            free(indices);
            free(conv_out);
        }
        free(owned);
        owned = out;
        in = out;
    }
    if (status == FC_OK) {
        fc_index channels, h, w;
        block_output(&blocks[count - 1], &channels, &h, &w);
        memcpy(y, in, (size_t)(batch * channels * h * w) * sizeof(real));
    }
    free(owned);
    return status;
}

static void FC_FN(check_chain)(const char *name, fc_simd_level simd, int count, fc_conv_block *blocks,
                               fc_index batch)
{
    real *params[3][2];
    for (int i = 0; i < count; i++) {
        const fc_conv_shape *s = &blocks[i].conv;
        const fc_index weights = s->out_channels * s->in_channels * s->kernel_h * s->kernel_w;
        params[i][0] = malloc((size_t)weights * sizeof(real));
        params[i][1] = malloc((size_t)s->out_channels * sizeof(real));
        for (fc_index j = 0; j < weights; j++)
            params[i][0][j] = (real)rng_uniform();
        for (fc_index j = 0; j < s->out_channels; j++)
            params[i][1][j] = (real)rng_uniform();
        blocks[i].weight = params[i][0];
        blocks[i].bias = rng_int(0, 3) == 0 ? NULL : params[i][1];
    }
    const fc_conv_shape *first = &blocks[0].conv;
    fc_index channels, h, w;
    block_output(&blocks[count - 1], &channels, &h, &w);
    const fc_index x_count = batch * first->in_channels * first->in_h * first->in_w;
    const fc_index y_count = batch * channels * h * w;
    real *x = malloc((size_t)(x_count > 0 ? x_count : 1) * sizeof(real));
    real *expected = malloc((size_t)(y_count + SENTINELS) * sizeof(real));
    real *got = malloc((size_t)(y_count + SENTINELS) * sizeof(real));
    FC_FN(fill)(x, x_count);
    char where[160];
    snprintf(where, sizeof where, "%s %s %s, %d blocks, batch %lld", name, FC_IS_F32 ? "f32" : "f64",
             fc_simd_name(simd), count, (long long)batch);

    const fc_ctx one = { 1, simd };
    expect(FC_FN(layer_by_layer)(&one, batch, count, blocks, x, expected) == FC_OK, "layers ran", where);
    for (int threads = 1; threads <= 3; threads++) {
        const fc_ctx ctx = { threads, simd };
        for (fc_index i = 0; i < y_count + SENTINELS; i++)
            got[i] = (real)12345;
        expect(FC_FN(fc_conv_chain_forward)(&ctx, batch, count, blocks, x, got) == FC_OK, "chain ran", where);
        expect(FC_FN(same)(got, expected, y_count), "chain == layers, bit for bit", where);
        int sentinels_kept = 1;
        for (fc_index i = y_count; i < y_count + SENTINELS; i++)
            sentinels_kept &= got[i] == (real)12345;
        expect(sentinels_kept, "nothing written after y", where);
    }
    free(x);
    free(expected);
    free(got);
    for (int i = 0; i < count; i++) {
        free(params[i][0]);
        free(params[i][1]);
    }
}

static void FC_FN(check_bad_arguments)(void)
{
    fc_conv_block blocks[3];
    const int count = lenet_chain(blocks);
    real weight[16 * 6 * 25] = { 0 }, x[28 * 28] = { 0 }, y[16 * 5 * 5];
    const fc_ctx ctx = { 2, fc_simd_best() };
    for (int i = 0; i < count; i++) {
        blocks[i].weight = weight;
        blocks[i].bias = NULL;
    }
    expect(FC_FN(fc_conv_chain_forward)(NULL, 1, count, blocks, x, y) == FC_EINVAL, "ctx NULL", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, 1, 0, blocks, x, y) == FC_EINVAL, "no block", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, -1, count, blocks, x, y) == FC_EINVAL, "batch < 0", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, 1, count, NULL, x, y) == FC_EINVAL, "blocks NULL", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, 1, count, blocks, NULL, y) == FC_EINVAL, "x NULL", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, 1, count, blocks, x, NULL) == FC_EINVAL, "y NULL", "bad args");
    expect(FC_FN(fc_conv_chain_forward)(&ctx, 1, count, blocks, x, y) == FC_OK, "valid call", "bad args");
}

#endif /* FC_TEMPLATE_PASS */
