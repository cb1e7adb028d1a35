/*
 * test_conv_im2col.c -- standalone check of im2col.c, conv_im2col.c and pool.c against naive C
 * written straight from the definitions (double precision references).
 *
 * Build and run (from the repository root; gemm.c provides fc_gemm_*, simd.c fc_simd_best):
 *     gcc -O2 -std=gnu99 -fopenmp -ffp-contract=fast -fno-math-errno -Isrc_c -Itests/c \
 *         tests/c/test_conv_im2col.c src_c/im2col.c src_c/conv_im2col.c src_c/pool.c \
 *         src_c/gemm.c src_c/simd.c -lm -o /tmp/test_conv_im2col && /tmp/test_conv_im2col
 * (-Itests/c lets fc_template.h include this file again for float and double.) Add
 * -fsanitize=address,undefined for the sanitizer run. Exit status 0 iff every check passed.
 *
 * Checked: im2col (bitwise) and col2im (adds), conv forward and backward (every NULL combination
 * of the outputs), max/avg pooling forward and backward, on fixed edge shapes and random shapes,
 * float and double, with 1 and 2 threads (results must be bitwise identical) at the best SIMD
 * level and with 1 thread at the scalar level (average pooling backward also with 3 and 7
 * threads), a batch spanning several scratch chunks, pooling ties, NaN and -inf, and FC_EINDEX on
 * a corrupt index.
 */
#ifndef FC_TEMPLATE_PASS

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "im2col.h"
#include "test_support.h"

/* ---- bookkeeping ---------------------------------------------------------------------------- */

/* Largest relative error seen per (check name, type); printed at the end. */
#define MAX_STATS 64
static struct { const char *name; int is_f32; double max_rel; long count; } stats[MAX_STATS];
static int stat_count = 0;

static void record(const char *name, int is_f32, double rel)
{
    for (int i = 0; i < stat_count; i++) {
        if (stats[i].name == name && stats[i].is_f32 == is_f32) {
            if (rel > stats[i].max_rel)
                stats[i].max_rel = rel;
            stats[i].count++;
            return;
        }
    }
    if (stat_count < MAX_STATS) {
        stats[stat_count].name = name;
        stats[stat_count].is_f32 = is_f32;
        stats[stat_count].max_rel = rel;
        stats[stat_count].count = 1;
        stat_count++;
    }
}

/* ---- naive references, double precision, straight from the definitions ---------------------- */

static fc_index conv_out_len(fc_index in, fc_index k, fc_index stride, fc_index pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

static int inside(fc_index v, fc_index len) { return v >= 0 && v < len; }

static void naive_im2col(const fc_conv_shape *s, const double *x, double *col)
{
    fc_index P = s->out_h * s->out_w;
    for (fc_index c = 0; c < s->in_channels; c++)
        for (fc_index r = 0; r < s->kernel_h; r++)
            for (fc_index q = 0; q < s->kernel_w; q++)
                for (fc_index oh = 0; oh < s->out_h; oh++)
                    for (fc_index ow = 0; ow < s->out_w; ow++) {
                        fc_index ih = oh * s->stride_h - s->pad_h + r, iw = ow * s->stride_w - s->pad_w + q;
                        fc_index row = (c * s->kernel_h + r) * s->kernel_w + q;
                        col[row * P + oh * s->out_w + ow] =
                            inside(ih, s->in_h) && inside(iw, s->in_w) ? x[(c * s->in_h + ih) * s->in_w + iw] : 0.0;
                    }
}

/* The seven-loop convolution. */
static void naive_conv_forward(const fc_conv_shape *s, const double *x, const double *w,
                               const double *b, double *y)
{
    for (fc_index n = 0; n < s->batch; n++)
        for (fc_index k = 0; k < s->out_channels; k++)
            for (fc_index oh = 0; oh < s->out_h; oh++)
                for (fc_index ow = 0; ow < s->out_w; ow++) {
                    double acc = b ? b[k] : 0.0;
                    for (fc_index c = 0; c < s->in_channels; c++)
                        for (fc_index r = 0; r < s->kernel_h; r++)
                            for (fc_index q = 0; q < s->kernel_w; q++) {
                                fc_index ih = oh * s->stride_h - s->pad_h + r, iw = ow * s->stride_w - s->pad_w + q;
                                if (inside(ih, s->in_h) && inside(iw, s->in_w))
                                    acc += x[((n * s->in_channels + c) * s->in_h + ih) * s->in_w + iw] *
                                           w[((k * s->in_channels + c) * s->kernel_h + r) * s->kernel_w + q];
                            }
                    y[((n * s->out_channels + k) * s->out_h + oh) * s->out_w + ow] = acc;
                }
}

/* Its adjoint: every forward product x*w sends gy*w to x and gy*x to w. */
static void naive_conv_backward(const fc_conv_shape *s, const double *gy, const double *x,
                                const double *w, double *gx, double *gw, double *gb)
{
    memset(gx, 0, sizeof(double) * (size_t)(s->batch * s->in_channels * s->in_h * s->in_w));
    memset(gw, 0, sizeof(double) * (size_t)(s->out_channels * s->in_channels * s->kernel_h * s->kernel_w));
    memset(gb, 0, sizeof(double) * (size_t)s->out_channels);
    for (fc_index n = 0; n < s->batch; n++)
        for (fc_index k = 0; k < s->out_channels; k++)
            for (fc_index oh = 0; oh < s->out_h; oh++)
                for (fc_index ow = 0; ow < s->out_w; ow++) {
                    double g = gy[((n * s->out_channels + k) * s->out_h + oh) * s->out_w + ow];
                    gb[k] += g;
                    for (fc_index c = 0; c < s->in_channels; c++)
                        for (fc_index r = 0; r < s->kernel_h; r++)
                            for (fc_index q = 0; q < s->kernel_w; q++) {
                                fc_index ih = oh * s->stride_h - s->pad_h + r, iw = ow * s->stride_w - s->pad_w + q;
                                if (!inside(ih, s->in_h) || !inside(iw, s->in_w))
                                    continue;
                                fc_index xi = ((n * s->in_channels + c) * s->in_h + ih) * s->in_w + iw;
                                fc_index wi = ((k * s->in_channels + c) * s->kernel_h + r) * s->kernel_w + q;
                                gx[xi] += g * w[wi];
                                gw[wi] += g * x[xi];
                            }
                }
}

/* Max pooling on one plane: scan the FULL window (padding included, as -inf) in row-major order;
 * the first real element is the initial candidate, then `v > best || isnan(v)` replaces it. */
static void naive_max_pool(const fc_pool_shape *s, const double *x, double *y, int64_t *idx)
{
    for (fc_index oh = 0; oh < s->out_h; oh++)
        for (fc_index ow = 0; ow < s->out_w; ow++) {
            double best = -INFINITY;
            int64_t at = -1;
            for (fc_index r = 0; r < s->kernel_h; r++)
                for (fc_index q = 0; q < s->kernel_w; q++) {
                    fc_index h = oh * s->stride_h - s->pad_h + r, w = ow * s->stride_w - s->pad_w + q;
                    if (!inside(h, s->in_h) || !inside(w, s->in_w))
                        continue;   /* padding: -inf never wins */
                    double v = x[h * s->in_w + w];
                    if (at < 0 || v > best || isnan(v)) {   /* the first real element always counts */
                        best = v;
                        at = h * s->in_w + w;
                    }
                }
            y[oh * s->out_w + ow] = best;
            idx[oh * s->out_w + ow] = at;
        }
}

/* Average pooling on one plane: zero-padded sum over the full window / (kernel_h*kernel_w). */
static void naive_avg_pool(const fc_pool_shape *s, const double *x, double *y)
{
    for (fc_index oh = 0; oh < s->out_h; oh++)
        for (fc_index ow = 0; ow < s->out_w; ow++) {
            double sum = 0.0;
            for (fc_index r = 0; r < s->kernel_h; r++)
                for (fc_index q = 0; q < s->kernel_w; q++) {
                    fc_index h = oh * s->stride_h - s->pad_h + r, w = ow * s->stride_w - s->pad_w + q;
                    if (inside(h, s->in_h) && inside(w, s->in_w))
                        sum += x[h * s->in_w + w];
                }
            y[oh * s->out_w + ow] = sum / (double)(s->kernel_h * s->kernel_w);
        }
}

/* Average pooling gradient on one plane, gathered: each input element sums the shares of the
 * windows that cover it. */
static void naive_avg_pool_backward(const fc_pool_shape *s, const double *gy, double *gx)
{
    for (fc_index h = 0; h < s->in_h; h++)
        for (fc_index w = 0; w < s->in_w; w++) {
            double sum = 0.0;
            for (fc_index oh = 0; oh < s->out_h; oh++)
                for (fc_index ow = 0; ow < s->out_w; ow++) {
                    fc_index r = h - (oh * s->stride_h - s->pad_h), q = w - (ow * s->stride_w - s->pad_w);
                    if (inside(r, s->kernel_h) && inside(q, s->kernel_w))
                        sum += gy[oh * s->out_w + ow] / (double)(s->kernel_h * s->kernel_w);
                }
            gx[h * s->in_w + w] = sum;
        }
}

/* ---- shapes ----------------------------------------------------------------------------------- */

static fc_conv_shape make_conv(fc_index n, fc_index c, fc_index h, fc_index w, fc_index k,
                               fc_index kh, fc_index kw, fc_index sh, fc_index sw, fc_index ph,
                               fc_index pw)
{
    fc_conv_shape s = {n, c, h, w, k, kh, kw, sh, sw, ph, pw, 0, 0};
    s.out_h = conv_out_len(h, kh, sh, ph);
    s.out_w = conv_out_len(w, kw, sw, pw);
    return s;
}

static fc_conv_shape random_conv(void)
{
    fc_index h = rng_int(1, 13), w = rng_int(1, 13);
    fc_index ph = rng_int(0, 3), pw = rng_int(0, 3);
    fc_index kh = rng_int(1, h + 2 * ph < 6 ? h + 2 * ph : 6), kw = rng_int(1, w + 2 * pw < 6 ? w + 2 * pw : 6);
    return make_conv(rng_int(1, 4), rng_int(1, 5), h, w, rng_int(1, 6), kh, kw, rng_int(1, 3),
                     rng_int(1, 3), ph, pw);
}

static fc_pool_shape make_pool(fc_index n, fc_index c, fc_index h, fc_index w, fc_index kh,
                               fc_index kw, fc_index sh, fc_index sw, fc_index ph, fc_index pw)
{
    fc_pool_shape s = {n, c, h, w, kh, kw, sh, sw, ph, pw, 0, 0};
    s.out_h = conv_out_len(h, kh, sh, ph);
    s.out_w = conv_out_len(w, kw, sw, pw);
    return s;
}

static fc_pool_shape random_pool(void)
{
    fc_index h = rng_int(1, 12), w = rng_int(1, 12);
    fc_index kh = rng_int(1, h < 5 ? h : 5), kw = rng_int(1, w < 5 ? w : 5);
    /* padding at most half the kernel (the binding's rule) */
    return make_pool(rng_int(1, 3), rng_int(1, 4), h, w, kh, kw, rng_int(1, 3), rng_int(1, 3),
                     rng_int(0, kh / 2), rng_int(0, kw / 2));
}

static char *describe_conv(const fc_conv_shape *s, char *buf)
{
    sprintf(buf, "N%lld C%lld %lldx%lld K%lld k%lldx%lld s%lldx%lld p%lldx%lld",
            (long long)s->batch, (long long)s->in_channels, (long long)s->in_h, (long long)s->in_w,
            (long long)s->out_channels, (long long)s->kernel_h, (long long)s->kernel_w,
            (long long)s->stride_h, (long long)s->stride_w, (long long)s->pad_h, (long long)s->pad_w);
    return buf;
}

static char *describe_pool(const fc_pool_shape *s, char *buf)
{
    sprintf(buf, "N%lld C%lld %lldx%lld k%lldx%lld s%lldx%lld p%lldx%lld", (long long)s->batch,
            (long long)s->channels, (long long)s->in_h, (long long)s->in_w, (long long)s->kernel_h,
            (long long)s->kernel_w, (long long)s->stride_h, (long long)s->stride_w,
            (long long)s->pad_h, (long long)s->pad_w);
    return buf;
}

/* The runs every kernel is checked in: 0 = 1 thread, 1 = 2 threads (both at the best SIMD level:
 * must be bitwise identical), 2 = 1 thread at the scalar level. */
#define RUNS 3
static fc_ctx run_ctx(int run)
{
    fc_ctx ctx = {run == 1 ? 2 : 1, run == 2 ? FC_SIMD_SCALAR : fc_simd_best()};
    return ctx;
}

#define FC_TEMPLATE_FILE "test_conv_im2col.c"
#include "fc_template.h"

/* ---- driver ----------------------------------------------------------------------------------- */

static void run_conv_case(const fc_conv_shape *s)
{
    test_conv_f32(s);
    test_conv_f64(s);
}

static void run_pool_case(const fc_pool_shape *s, int data_kind)
{
    test_pool_f32(s, data_kind);
    test_pool_f64(s, data_kind);
}

int main(int argc, char **argv)
{
    int random_cases = argc > 1 ? atoi(argv[1]) : 300;

    /* conv: edge shapes (N, C, H, W, K, kh, kw, sh, sw, ph, pw) */
    const fc_conv_shape fixed_conv[] = {
        make_conv(2, 3, 7, 7, 4, 3, 3, 2, 2, 0, 0),    /* stride does not divide: last row unused */
        make_conv(2, 2, 8, 6, 3, 3, 3, 1, 1, 2, 0),    /* padding on h only */
        make_conv(2, 2, 6, 8, 3, 3, 3, 1, 1, 0, 2),    /* padding on w only */
        make_conv(3, 4, 5, 5, 6, 1, 1, 1, 1, 0, 0),    /* 1x1 */
        make_conv(2, 3, 9, 7, 5, 1, 1, 2, 3, 0, 0),    /* 1x1 strided, non-square stride */
        make_conv(2, 2, 5, 4, 3, 7, 6, 1, 1, 1, 1),    /* kernel == padded input: 1x1 output */
        make_conv(1, 1, 9, 4, 1, 3, 2, 2, 1, 1, 0),    /* batch 1, channels 1, all non-square */
        make_conv(2, 2, 4, 5, 3, 2, 3, 1, 2, 3, 4),    /* padding > kernel: taps that read only padding */
        make_conv(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0),    /* the smallest */
        make_conv(2, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),  /* LeNet conv1 */
        make_conv(3, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0), /* LeNet conv2 */
        make_conv(70, 3, 32, 32, 8, 3, 3, 1, 1, 1, 1), /* several chunks (f32: 29, f64: 14 per chunk) */
        make_conv(3, 16, 64, 64, 48, 3, 3, 1, 1, 1, 1),/* one image per chunk (col > budget) */
        make_conv(3, 8, 29, 30, 8, 3, 2, 1, 1, 1, 1),  /* grad_x as a forward (AVX2 and AVX-512), non-square */
        make_conv(2, 5, 28, 33, 9, 5, 3, 1, 1, 3, 2),  /* as a forward with K < 2 C (AVX-512), wide padding */
        make_conv(40, 8, 24, 20, 12, 3, 2, 2, 1, 1, 0),/* several chunks, uneven last chunk */
        make_conv(2, 3, 31, 31, 5, 3, 3, 2, 2, 1, 1),  /* the benchmark's strided shape, smaller */
        make_conv(1, 1, 9, 17, 2, 3, 3, 2, 2, 0, 0),   /* stride 2: the last tap reads x's last element */
        make_conv(2, 2, 11, 40, 3, 3, 5, 2, 2, 0, 2),  /* stride 2, rows of 20 outputs, pad on w only */
        make_conv(2, 3, 7, 45, 4, 2, 4, 2, 2, 1, 1),   /* col2im pairs (0,1) (2,3), rows of 22: 3 blocks */
        make_conv(2, 2, 9, 19, 3, 3, 5, 2, 2, 2, 3),   /* col2im: a lone last tap, pad_w 3 (s - pad < -1) */
        make_conv(2, 2, 8, 9, 3, 2, 1, 2, 2, 0, 0),    /* col2im: kernel_w 1, the lone tap only */
        make_conv(1, 1, 5, 3, 2, 3, 7, 2, 2, 1, 3),    /* col2im: taps with empty runs (kernel past the row) */
        make_conv(2, 3, 13, 64, 7, 3, 4, 1, 2, 1, 1),  /* implicit (AVX-512): two vectors per output row */
        make_conv(2, 2, 9, 16, 3, 2, 2, 3, 2, 0, 0),   /* implicit for float64 only: out_w 8 */
        make_conv(2, 3, 5, 18, 4, 3, 3, 1, 1, 0, 0),   /* implicit at stride 1: x read in place to its end */
        make_conv(2, 3, 6, 16, 5, 2, 3, 1, 1, 1, 1),   /* implicit at stride 1: padded copy, rows of 16 */
        make_conv(1, 2, 9, 20, 3, 3, 5, 2, 1, 0, 0),   /* implicit at stride 1: stride_h 2, in place */
        make_conv(2, 3, 10, 10, 5, 3, 3, 1, 1, 0, 0),  /* implicit, float32 in halves: out 8 x 8, in place */
        make_conv(2, 3, 8, 16, 5, 3, 3, 1, 2, 1, 1),   /* implicit, float32 in halves: stride 2, split copy */
        make_conv(2, 3, 6, 6, 5, 3, 3, 1, 1, 0, 0),    /* implicit, float64 in halves: out 4 x 4, in place */
        make_conv(1, 2, 6, 4, 3, 3, 3, 1, 1, 1, 1),    /* implicit, float64 in halves: padded copy, out 6 x 4 */
    };
    char buf[160];
    for (size_t i = 0; i < sizeof fixed_conv / sizeof fixed_conv[0]; i++) {
        printf("conv %s\n", describe_conv(&fixed_conv[i], buf));
        run_conv_case(&fixed_conv[i]);
    }
    for (int i = 0; i < random_cases; i++) {
        fc_conv_shape s = random_conv();
        run_conv_case(&s);
    }

    /* pooling: (N, C, H, W, kh, kw, sh, sw, ph, pw); data kinds 0 random, 1 ties, 2 NaN/-inf */
    const fc_pool_shape fixed_pool[] = {
        make_pool(2, 3, 8, 8, 2, 2, 2, 2, 0, 0),       /* the fast path */
        make_pool(2, 3, 7, 9, 2, 2, 2, 2, 0, 0),       /* fast path, odd sizes: last row/col unused */
        /* fast path, output widths around one 8-wide block, odd sizes, N*C = 1, one row per plane */
        make_pool(1, 1, 2, 2, 2, 2, 2, 2, 0, 0),
        make_pool(3, 2, 10, 10, 2, 2, 2, 2, 0, 0),
        make_pool(2, 3, 11, 10, 2, 2, 2, 2, 0, 0),
        make_pool(2, 3, 10, 11, 2, 2, 2, 2, 0, 0),
        make_pool(4, 1, 2, 14, 2, 2, 2, 2, 0, 0),
        make_pool(2, 2, 16, 16, 2, 2, 2, 2, 0, 0),
        make_pool(2, 2, 18, 19, 2, 2, 2, 2, 0, 0),
        make_pool(2, 3, 28, 28, 2, 2, 2, 2, 0, 0),
        make_pool(1, 3, 31, 30, 2, 2, 2, 2, 0, 0),
        make_pool(1, 1, 35, 34, 2, 2, 2, 2, 0, 0),
        make_pool(2, 2, 7, 7, 3, 3, 2, 2, 1, 1),       /* overlapping windows, padding */
        make_pool(1, 1, 9, 5, 3, 2, 2, 1, 1, 0),       /* non-square everything, pad on h only */
        make_pool(2, 2, 5, 6, 1, 1, 1, 1, 0, 0),       /* 1x1 */
        make_pool(2, 2, 5, 6, 5, 6, 1, 1, 0, 0),       /* kernel == input */
        make_pool(1, 2, 6, 6, 4, 4, 4, 4, 2, 2),       /* padding == half the kernel */
        make_pool(2, 3, 10, 10, 3, 3, 3, 3, 0, 0),     /* stride == kernel, not 2 */
    };
    for (size_t i = 0; i < sizeof fixed_pool / sizeof fixed_pool[0]; i++) {
        printf("pool %s\n", describe_pool(&fixed_pool[i], buf));
        for (int kind = 0; kind < 3; kind++)
            run_pool_case(&fixed_pool[i], kind);
    }
    for (int i = 0; i < random_cases; i++) {
        fc_pool_shape s = random_pool();
        run_pool_case(&s, i % 3);
    }
    test_pool_bad_index_f32();
    test_pool_bad_index_f64();

    printf("\n%-28s %-4s %8s %12s\n", "check", "type", "cases", "max rel err");
    for (int i = 0; i < stat_count; i++)
        printf("%-28s %-4s %8ld %12.3e\n", stats[i].name, stats[i].is_f32 ? "f32" : "f64",
               stats[i].count, stats[i].max_rel);
    printf("\n%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}

#else /* FC_TEMPLATE_PASS: the typed tests, `real` is float or double */

/* Relative error of got vs ref, normwise: max |got - ref| / max(max |ref|, floor) (NaN-aware: both NaN is
 * equal). floor 0 but for sums whose terms may cancel: their rounding scales with the terms. */
static double FC_FN(rel_error_floor)(const real *got, const double *ref, fc_index count, double floor)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (fc_index i = 0; i < count; i++) {
        if (isnan(ref[i]) || isnan((double)got[i])) {
            if (!(isnan(ref[i]) && isnan((double)got[i])))
                return INFINITY;
            continue;
        }
        if (isinf(ref[i]) || isinf((double)got[i])) {
            if ((double)got[i] != ref[i])
                return INFINITY;
            continue;
        }
        double diff = fabs((double)got[i] - ref[i]);
        if (diff > max_diff)
            max_diff = diff;
        if (fabs(ref[i]) > max_ref)
            max_ref = fabs(ref[i]);
    }
    if (floor > max_ref)
        max_ref = floor;
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

static double FC_FN(rel_error)(const real *got, const double *ref, fc_index count)
{
    return FC_FN(rel_error_floor)(got, ref, count, 0.0);
}

static real *FC_FN(random_array)(fc_index count)
{
    real *a = malloc(sizeof(real) * (size_t)(count ? count : 1));
    for (fc_index i = 0; i < count; i++)
        a[i] = (real)rng_uniform();
    return a;
}

static double *FC_FN(widen)(const real *a, fc_index count)
{
    double *d = malloc(sizeof(double) * (size_t)(count ? count : 1));
    for (fc_index i = 0; i < count; i++)
        d[i] = (double)a[i];
    return d;
}

/* A buffer full of NaN: outputs must be written, not accumulated into. */
static real *FC_FN(poisoned)(fc_index count)
{
    real *a = malloc(sizeof(real) * (size_t)(count ? count : 1));
    for (fc_index i = 0; i < count; i++)
        a[i] = (real)NAN;
    return a;
}

static int FC_FN(same_bits)(const void *a, const void *b, fc_index count, size_t size)
{
    return memcmp(a, b, (size_t)count * size) == 0;
}

static void FC_FN(check_close_floor)(const char *name, const real *got, const double *ref, fc_index count,
                                     double floor, const char *where)
{
    const double tolerance = FC_IS_F32 ? 2e-5 : 1e-12;
    double rel = FC_FN(rel_error_floor)(got, ref, count, floor);
    record(name, FC_IS_F32, rel);
    expect(rel <= tolerance, name, where);
}

static void FC_FN(check_close)(const char *name, const real *got, const double *ref,
                               fc_index count, const char *where)
{
    FC_FN(check_close_floor)(name, got, ref, count, 0.0, where);
}

/* The largest sum of |grad_y| over one output channel: the scale of grad_b's rounding, which a sum that
 * nearly cancels (one channel, a few dozen terms) would otherwise compare against its own tiny value. */
static double FC_FN(grad_b_scale)(const fc_conv_shape *s, const double *gyd)
{
    const fc_index plane = s->out_h * s->out_w;
    double largest = 0.0;
    for (fc_index k = 0; k < s->out_channels; k++) {
        double sum = 0.0;
        for (fc_index n = 0; n < s->batch; n++)
            for (fc_index q = 0; q < plane; q++)
                sum += fabs(gyd[(n * s->out_channels + k) * plane + q]);
        largest = sum > largest ? sum : largest;
    }
    return largest;
}

/* im2col (exact) and col2im (adds) of image 0. */
static void FC_FN(test_im2col_image)(const fc_conv_shape *s, const real *x, const char *where)
{
    const fc_index in_image = s->in_channels * s->in_h * s->in_w;
    const fc_index col_count = s->in_channels * s->kernel_h * s->kernel_w * s->out_h * s->out_w;
    real *col = FC_FN(poisoned)(col_count);
    double *x_wide = FC_FN(widen)(x, in_image);
    double *col_ref = malloc(sizeof(double) * (size_t)col_count);

    FC_FN(fc_im2col)(s, x, col);
    naive_im2col(s, x_wide, col_ref);
    double rel = FC_FN(rel_error)(col, col_ref, col_count);
    record("im2col", FC_IS_F32, rel);
    expect(rel == 0.0, "im2col exact", where);

    /* col2im adds into a non-zero x: x + adjoint(col), the adjoint by direct scatter */
    real *x_sum = FC_FN(random_array)(in_image);
    double *x_sum_ref = FC_FN(widen)(x_sum, in_image);
    for (fc_index c = 0; c < s->in_channels; c++)
        for (fc_index r = 0; r < s->kernel_h; r++)
            for (fc_index q = 0; q < s->kernel_w; q++)
                for (fc_index oh = 0; oh < s->out_h; oh++)
                    for (fc_index ow = 0; ow < s->out_w; ow++) {
                        fc_index ih = oh * s->stride_h - s->pad_h + r, iw = ow * s->stride_w - s->pad_w + q;
                        fc_index row = (c * s->kernel_h + r) * s->kernel_w + q;
                        if (inside(ih, s->in_h) && inside(iw, s->in_w))
                            x_sum_ref[(c * s->in_h + ih) * s->in_w + iw] +=
                                (double)col[row * s->out_h * s->out_w + oh * s->out_w + ow];
                    }
    real *x_sum_best = malloc(sizeof(real) * (size_t)in_image);
    memcpy(x_sum_best, x_sum, sizeof(real) * (size_t)in_image);
    FC_FN(fc_col2im)(s, col, x_sum);
    FC_FN(check_close)("col2im", x_sum, x_sum_ref, in_image, where);

    /* the best level's adds (AVX-512 stride 2: two taps a vector) give the scalar ones' bits */
    const fc_index taps = s->kernel_h * s->kernel_w, out_plane = s->out_h * s->out_w, in_plane = s->in_h * s->in_w;
    for (fc_index c = 0; c < s->in_channels; c++)
        FC_FN(fc_col2im_plane)(fc_simd_best(), s, col + c * taps * out_plane, out_plane, x_sum_best + c * in_plane);
    expect(FC_FN(same_bits)(x_sum_best, x_sum, in_image, sizeof(real)), "col2im best level = scalar, bitwise", where);

    free(col); free(x_wide); free(col_ref); free(x_sum); free(x_sum_ref); free(x_sum_best);
}

static void FC_FN(test_conv)(const fc_conv_shape *s)
{
    char where[200];
    describe_conv(s, where);
    strcat(where, FC_IS_F32 ? " f32" : " f64");
    const fc_index x_count = s->batch * s->in_channels * s->in_h * s->in_w;
    const fc_index w_count = s->out_channels * s->in_channels * s->kernel_h * s->kernel_w;
    const fc_index y_count = s->batch * s->out_channels * s->out_h * s->out_w;
    const fc_index b_count = s->out_channels;
    real *x = FC_FN(random_array)(x_count), *w = FC_FN(random_array)(w_count);
    real *b = FC_FN(random_array)(b_count), *gy = FC_FN(random_array)(y_count);
    double *xd = FC_FN(widen)(x, x_count), *wd = FC_FN(widen)(w, w_count);
    double *bd = FC_FN(widen)(b, b_count), *gyd = FC_FN(widen)(gy, y_count);
    double *y_ref = malloc(sizeof(double) * (size_t)y_count);
    double *gx_ref = malloc(sizeof(double) * (size_t)x_count);
    double *gw_ref = malloc(sizeof(double) * (size_t)w_count);
    double *gb_ref = malloc(sizeof(double) * (size_t)b_count);
    real *y[RUNS], *gx[RUNS], *gw[RUNS], *gb[RUNS];

    FC_FN(test_im2col_image)(s, x, where);

    naive_conv_forward(s, xd, wd, bd, y_ref);
    naive_conv_backward(s, gyd, xd, wd, gx_ref, gw_ref, gb_ref);
    for (int t = 0; t < RUNS; t++) {
        fc_ctx ctx = run_ctx(t);
        y[t] = FC_FN(poisoned)(y_count);
        gx[t] = FC_FN(poisoned)(x_count);
        gw[t] = FC_FN(poisoned)(w_count);
        gb[t] = FC_FN(poisoned)(b_count);
        expect(FC_FN(fc_conv2d_forward_im2col)(&ctx, s, x, w, b, y[t]) == FC_OK, "forward status", where);
        expect(FC_FN(fc_conv2d_backward_im2col)(&ctx, s, gy, x, w, gx[t], gw[t], gb[t]) == FC_OK,
               "backward status", where);
        FC_FN(check_close)("conv forward", y[t], y_ref, y_count, where);
        FC_FN(check_close)("conv backward grad_x", gx[t], gx_ref, x_count, where);
        FC_FN(check_close)("conv backward grad_w", gw[t], gw_ref, w_count, where);
        FC_FN(check_close_floor)("conv backward grad_b", gb[t], gb_ref, b_count, FC_FN(grad_b_scale)(s, gyd),
                                 where);
    }
    expect(FC_FN(same_bits)(y[0], y[1], y_count, sizeof(real)), "forward 1 vs 2 threads bitwise", where);
    expect(FC_FN(same_bits)(gx[0], gx[1], x_count, sizeof(real)), "grad_x 1 vs 2 threads bitwise", where);
    expect(FC_FN(same_bits)(gw[0], gw[1], w_count, sizeof(real)), "grad_w 1 vs 2 threads bitwise", where);
    expect(FC_FN(same_bits)(gb[0], gb[1], b_count, sizeof(real)), "grad_b 1 vs 2 threads bitwise", where);

    /* no bias: the GEMM result alone */
    {
        fc_ctx ctx = run_ctx(1);
        real *y_plain = FC_FN(poisoned)(y_count);
        naive_conv_forward(s, xd, wd, NULL, y_ref);
        expect(FC_FN(fc_conv2d_forward_im2col)(&ctx, s, x, w, NULL, y_plain) == FC_OK, "forward status", where);
        FC_FN(check_close)("conv forward (no bias)", y_plain, y_ref, y_count, where);
        free(y_plain);
    }
    /* every subset of the backward outputs gives the same bits as the full call */
    for (int mask = 0; mask < 8; mask++) {
        fc_ctx ctx = run_ctx(1);
        real *px = mask & 1 ? FC_FN(poisoned)(x_count) : NULL;
        real *pw = mask & 2 ? FC_FN(poisoned)(w_count) : NULL;
        real *pb = mask & 4 ? FC_FN(poisoned)(b_count) : NULL;
        expect(FC_FN(fc_conv2d_backward_im2col)(&ctx, s, gy, x, w, px, pw, pb) == FC_OK, "backward subset status", where);
        if (px) expect(FC_FN(same_bits)(px, gx[0], x_count, sizeof(real)), "backward subset grad_x", where);
        if (pw) expect(FC_FN(same_bits)(pw, gw[0], w_count, sizeof(real)), "backward subset grad_w", where);
        if (pb) expect(FC_FN(same_bits)(pb, gb[0], b_count, sizeof(real)), "backward subset grad_b", where);
        free(px); free(pw); free(pb);
    }

    for (int t = 0; t < RUNS; t++) {
        free(y[t]); free(gx[t]); free(gw[t]); free(gb[t]);
    }
    free(x); free(w); free(b); free(gy); free(xd); free(wd); free(bd); free(gyd);
    free(y_ref); free(gx_ref); free(gw_ref); free(gb_ref);
}

/* data_kind: 0 uniform random; 1 values in {0, 1, 2} (many ties); 2 random with NaN and -inf. */
static void FC_FN(fill_pool_input)(real *x, fc_index count, int data_kind)
{
    for (fc_index i = 0; i < count; i++) {
        if (data_kind == 1) {
            x[i] = (real)(rng_next() % 3);
        } else {
            x[i] = (real)rng_uniform();
            if (data_kind == 2) {
                uint64_t dice = rng_next() % 10;
                if (dice == 0) x[i] = (real)NAN;
                else if (dice == 1) x[i] = (real)-INFINITY;
            }
        }
    }
}

static void FC_FN(test_pool)(const fc_pool_shape *s, int data_kind)
{
    char where[200];
    describe_pool(s, where);
    strcat(where, FC_IS_F32 ? " f32" : " f64");
    sprintf(where + strlen(where), " data%d", data_kind);
    const fc_index planes = s->batch * s->channels;
    const fc_index in_plane = s->in_h * s->in_w, out_plane = s->out_h * s->out_w;
    const fc_index x_count = planes * in_plane, y_count = planes * out_plane;
    real *x = malloc(sizeof(real) * (size_t)x_count);
    FC_FN(fill_pool_input)(x, x_count, data_kind);
    real *gy = FC_FN(random_array)(y_count);
    double *xd = FC_FN(widen)(x, x_count), *gyd = FC_FN(widen)(gy, y_count);
    double *y_ref = malloc(sizeof(double) * (size_t)y_count);
    double *gx_ref = malloc(sizeof(double) * (size_t)x_count);
    int64_t *idx_ref = malloc(sizeof(int64_t) * (size_t)y_count);
    real *y[RUNS], *gx[RUNS], *ya[RUNS], *gxa[RUNS];
    int64_t *idx[RUNS];

    for (fc_index p = 0; p < planes; p++)
        naive_max_pool(s, xd + p * in_plane, y_ref + p * out_plane, idx_ref + p * out_plane);
    /* max backward reference: scatter at the reference indices */
    memset(gx_ref, 0, sizeof(double) * (size_t)x_count);
    for (fc_index p = 0; p < planes; p++)
        for (fc_index q = 0; q < out_plane; q++)
            gx_ref[p * in_plane + idx_ref[p * out_plane + q]] += gyd[p * out_plane + q];

    for (int t = 0; t < RUNS; t++) {
        fc_ctx ctx = run_ctx(t);
        y[t] = FC_FN(poisoned)(y_count);
        gx[t] = FC_FN(poisoned)(x_count);
        idx[t] = malloc(sizeof(int64_t) * (size_t)y_count);
        memset(idx[t], 0xAB, sizeof(int64_t) * (size_t)y_count);
        expect(FC_FN(fc_max_pool2d_forward)(&ctx, s, x, y[t], idx[t]) == FC_OK, "max forward status", where);
        FC_FN(check_close)("max pool forward", y[t], y_ref, y_count, where);
        expect(memcmp(idx[t], idx_ref, sizeof(int64_t) * (size_t)y_count) == 0, "max pool indices", where);
        expect(FC_FN(fc_max_pool2d_backward)(&ctx, s, gy, idx_ref, gx[t]) == FC_OK, "max backward status", where);
        FC_FN(check_close)("max pool backward", gx[t], gx_ref, x_count, where);
    }
    for (int t = 1; t < RUNS; t++) {   /* pooling does not even depend on the SIMD level */
        expect(FC_FN(same_bits)(y[0], y[t], y_count, sizeof(real)), "max forward runs bitwise", where);
        expect(FC_FN(same_bits)(gx[0], gx[t], x_count, sizeof(real)), "max backward runs bitwise", where);
    }

    if (data_kind != 2) {   /* average pooling of NaN is NaN everywhere near it; skip that data */
        double *ya_ref = malloc(sizeof(double) * (size_t)y_count);
        for (fc_index p = 0; p < planes; p++) {
            naive_avg_pool(s, xd + p * in_plane, ya_ref + p * out_plane);
            naive_avg_pool_backward(s, gyd + p * out_plane, gx_ref + p * in_plane);
        }
        for (int t = 0; t < RUNS; t++) {
            fc_ctx ctx = run_ctx(t);
            ya[t] = FC_FN(poisoned)(y_count);
            gxa[t] = FC_FN(poisoned)(x_count);
            expect(FC_FN(fc_avg_pool2d_forward)(&ctx, s, x, ya[t]) == FC_OK, "avg forward status", where);
            expect(FC_FN(fc_avg_pool2d_backward)(&ctx, s, gy, gxa[t]) == FC_OK, "avg backward status", where);
            FC_FN(check_close)("avg pool forward", ya[t], ya_ref, y_count, where);
            FC_FN(check_close)("avg pool backward", gxa[t], gx_ref, x_count, where);
        }
        for (int t = 1; t < RUNS; t++) {
            expect(FC_FN(same_bits)(ya[0], ya[t], y_count, sizeof(real)), "avg forward runs bitwise", where);
            expect(FC_FN(same_bits)(gxa[0], gxa[t], x_count, sizeof(real)), "avg backward runs bitwise", where);
        }
        /* More threads than the runs use: the 2x2 backward splits output rows, not planes, so its
         * ranges then start and end inside planes (each range must stop writing at its end). */
        for (int threads = 3; threads <= 7; threads += 4) {
            fc_ctx ctx = {threads, threads == 3 ? fc_simd_best() : FC_SIMD_SCALAR};
            real *gx_more = FC_FN(poisoned)(x_count);
            expect(FC_FN(fc_avg_pool2d_backward)(&ctx, s, gy, gx_more) == FC_OK, "avg backward status", where);
            expect(FC_FN(same_bits)(gxa[0], gx_more, x_count, sizeof(real)), "avg backward 3/7 threads bitwise", where);
            free(gx_more);
        }
        for (int t = 0; t < RUNS; t++) {
            free(ya[t]); free(gxa[t]);
        }
        free(ya_ref);
    }

    for (int t = 0; t < RUNS; t++) {
        free(y[t]); free(gx[t]); free(idx[t]);
    }
    free(x); free(gy); free(xd); free(gyd); free(y_ref); free(gx_ref); free(idx_ref);
}

/* An index outside [0, in_h*in_w) makes max backward return FC_EINDEX (and not write outside). */
static void FC_FN(test_pool_bad_index)(void)
{
    fc_pool_shape s = make_pool(2, 2, 4, 4, 2, 2, 2, 2, 0, 0);
    const fc_index y_count = 2 * 2 * 2 * 2, x_count = 2 * 2 * 4 * 4;
    real *gy = FC_FN(random_array)(y_count), *gx = FC_FN(poisoned)(x_count);
    int64_t idx[16];
    const int64_t bad_values[] = {-1, 16, INT64_MAX, INT64_MIN};
    for (int v = 0; v < 4; v++) {
        for (int i = 0; i < 16; i++)
            idx[i] = i % 4;
        idx[(v * 5) % 16] = bad_values[v];
        for (int t = 1; t <= 2; t++) {
            fc_ctx ctx = {t, FC_SIMD_SCALAR};
            expect(FC_FN(fc_max_pool2d_backward)(&ctx, &s, gy, idx, gx) == FC_EINDEX,
                   "max backward FC_EINDEX", FC_IS_F32 ? "f32" : "f64");
        }
    }
    free(gy); free(gx);
}

#endif /* FC_TEMPLATE_PASS */
