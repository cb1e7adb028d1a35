/*
 * test_conv_direct.c -- standalone check and timing of src_c/conv_direct*.c (whose kernel choice comes
 * from src_c/conv_plan.c).
 *
 * Build and run (from the repository root):
 *   gcc -O2 -std=gnu99 -fopenmp -ffp-contract=fast -fno-math-errno -Isrc_c \
 *       tests/c/test_conv_direct.c src_c/conv_direct*.c src_c/conv_plan.c -o /tmp/test_conv_direct -lm
 *   /tmp/test_conv_direct [random_cases] [--no-bench]
 *
 * Every result is compared with a naive loop nest written from the definition (long double):
 *   y[n,k,oh,ow]    = b[k] + sum_{c,r,s} w[k,c,r,s] x[n,c,oh*sh-ph+r, ow*sw-pw+s]   (in-image terms)
 *   grad_x[n,c,i,j] = sum over (k,oh,ow,r,s) with oh*sh-ph+r = i, ow*sw-pw+s = j of w[k,c,r,s] gy[n,k,oh,ow]
 *   grad_w[k,c,r,s] = sum_{n,oh,ow} gy[n,k,oh,ow] x[n,c,oh*sh-ph+r, ow*sw-pw+s]
 *   grad_b[k]       = sum_{n,oh,ow} gy[n,k,oh,ow]
 * The error of an element is |got - ref| / sum|terms| (the condition-free relative error). For each
 * case, float and double, every SIMD level this CPU runs, threads 1 and 2 (which must agree bitwise),
 * and with each backward output requested alone (NULL for the others), which must also agree bitwise.
 * Outputs are pre-filled with NaN so that an unwritten element is caught.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastconv.h"

typedef long double ref_t;

static int failures = 0;
static double worst_err[2][4];   /* [is_f32][y, gx, gw, gb] */

/* ---- random numbers (deterministic) -------------------------------------------------------- */
static unsigned long long rng_state = 88172645463325252ULL;
static unsigned long long rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (unsigned long long)(hi - lo + 1)); }
static double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

/* ---- geometry ------------------------------------------------------------------------------ */
static fc_conv_shape make_shape(int n, int c, int h, int w, int k, int r, int s, int sh, int sw, int ph, int pw)
{
    fc_conv_shape shape = {n, c, h, w, k, r, s, sh, sw, ph, pw, 0, 0};
    shape.out_h = (h + 2 * ph - r) / sh + 1;
    shape.out_w = (w + 2 * pw - s) / sw + 1;
    return shape;
}
static fc_index x_size(const fc_conv_shape *s) { return s->batch * s->in_channels * s->in_h * s->in_w; }
static fc_index w_size(const fc_conv_shape *s) { return s->out_channels * s->in_channels * s->kernel_h * s->kernel_w; }
static fc_index y_size(const fc_conv_shape *s) { return s->batch * s->out_channels * s->out_h * s->out_w; }

/* ---- reference: the definition, 7 nested loops --------------------------------------------- */
typedef struct {
    ref_t *y, *y_abs, *gx, *gx_abs, *gw, *gw_abs, *gb, *gb_abs;
} reference;

static void reference_compute(const fc_conv_shape *s, const double *x, const double *w, const double *b,
                              const double *gy, reference *ref)
{
    const fc_index N = s->batch, C = s->in_channels, H = s->in_h, W = s->in_w, K = s->out_channels;
    const fc_index R = s->kernel_h, S = s->kernel_w, OH = s->out_h, OW = s->out_w;
    ref->y = calloc(y_size(s), sizeof(ref_t));     ref->y_abs = calloc(y_size(s), sizeof(ref_t));
    ref->gx = calloc(x_size(s), sizeof(ref_t));    ref->gx_abs = calloc(x_size(s), sizeof(ref_t));
    ref->gw = calloc(w_size(s), sizeof(ref_t));    ref->gw_abs = calloc(w_size(s), sizeof(ref_t));
    ref->gb = calloc(K, sizeof(ref_t));            ref->gb_abs = calloc(K, sizeof(ref_t));
    for (fc_index n = 0; n < N; n++)
        for (fc_index k = 0; k < K; k++)
            for (fc_index oh = 0; oh < OH; oh++)
                for (fc_index ow = 0; ow < OW; ow++) {
                    const fc_index yi = ((n * K + k) * OH + oh) * OW + ow;
                    ref->y[yi] = b[k];
                    ref->y_abs[yi] = fabs(b[k]);
                    ref->gb[k] += gy[yi];
                    ref->gb_abs[k] += fabs(gy[yi]);
                    for (fc_index c = 0; c < C; c++)
                        for (fc_index r = 0; r < R; r++)
                            for (fc_index q = 0; q < S; q++) {
                                const fc_index ih = oh * s->stride_h - s->pad_h + r;
                                const fc_index iw = ow * s->stride_w - s->pad_w + q;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                const fc_index xi = ((n * C + c) * H + ih) * W + iw;
                                const fc_index wi = ((k * C + c) * R + r) * S + q;
                                ref->y[yi] += (ref_t)w[wi] * x[xi];
                                ref->y_abs[yi] += fabsl((ref_t)w[wi] * x[xi]);
                                ref->gx[xi] += (ref_t)w[wi] * gy[yi];
                                ref->gx_abs[xi] += fabsl((ref_t)w[wi] * gy[yi]);
                                ref->gw[wi] += (ref_t)gy[yi] * x[xi];
                                ref->gw_abs[wi] += fabsl((ref_t)gy[yi] * x[xi]);
                            }
                }
}

static void reference_free(reference *ref)
{
    free(ref->y); free(ref->y_abs); free(ref->gx); free(ref->gx_abs);
    free(ref->gw); free(ref->gw_abs); free(ref->gb); free(ref->gb_abs);
}

/* ---- type-erased buffers ------------------------------------------------------------------- */
static void *to_real(const double *src, fc_index count, int is_f32)
{
    void *dst = malloc((size_t)count * (is_f32 ? sizeof(float) : sizeof(double)));
    for (fc_index i = 0; i < count; i++) {
        if (is_f32) ((float *)dst)[i] = (float)src[i];
        else ((double *)dst)[i] = src[i];
    }
    return dst;
}
static void *nan_buffer(fc_index count, int is_f32)
{
    void *dst = malloc((size_t)count * (is_f32 ? sizeof(float) : sizeof(double)));
    for (fc_index i = 0; i < count; i++) {
        if (is_f32) ((float *)dst)[i] = NAN;
        else ((double *)dst)[i] = NAN;
    }
    return dst;
}
static double get_real(const void *p, fc_index i, int is_f32)
{
    return is_f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static size_t bytes(fc_index count, int is_f32) { return (size_t)count * (is_f32 ? 4 : 8); }

static int forward(int is_f32, const fc_ctx *ctx, const fc_conv_shape *s, const void *x, const void *w,
                   const void *b, void *y)
{
    return is_f32 ? fc_conv2d_forward_direct_f32(ctx, s, x, w, b, y)
                  : fc_conv2d_forward_direct_f64(ctx, s, x, w, b, y);
}
static int backward(int is_f32, const fc_ctx *ctx, const fc_conv_shape *s, const void *gy, const void *x,
                    const void *w, void *gx, void *gw, void *gb)
{
    return is_f32 ? fc_conv2d_backward_direct_f32(ctx, s, gy, x, w, gx, gw, gb)
                  : fc_conv2d_backward_direct_f64(ctx, s, gy, x, w, gx, gw, gb);
}

static void describe(const fc_conv_shape *s, char *out, size_t size)
{
    snprintf(out, size, "x(%ld,%ld,%ld,%ld) w(%ld,%ld,%ld,%ld) stride(%ld,%ld) pad(%ld,%ld) -> (%ld,%ld)",
             (long)s->batch, (long)s->in_channels, (long)s->in_h, (long)s->in_w, (long)s->out_channels,
             (long)s->in_channels, (long)s->kernel_h, (long)s->kernel_w, (long)s->stride_h,
             (long)s->stride_w, (long)s->pad_h, (long)s->pad_w, (long)s->out_h, (long)s->out_w);
}

/* Max error of got against ref (relative to the sum of |terms|); NaN counts as a failure. */
static double max_error(const void *got, const ref_t *ref, const ref_t *ref_abs, fc_index count, int is_f32)
{
    double worst = 0;
    for (fc_index i = 0; i < count; i++) {
        const double g = get_real(got, i, is_f32);
        if (isnan(g))
            return INFINITY;
        const double scale = (double)ref_abs[i] > 1e-300 ? (double)ref_abs[i] : 1e-300;
        const double err = fabs(g - (double)ref[i]) / scale;
        if (err > worst)
            worst = err;
    }
    return worst;
}

static void check(const char *what, int which, double err, int is_f32, const char *where)
{
    const double tol = is_f32 ? 1e-5 : 1e-13;
    if (err > worst_err[is_f32][which])
        worst_err[is_f32][which] = err;
    if (!(err <= tol)) {
        failures++;
        printf("FAIL %s err %.3g > %.1g: %s\n", what, err, tol, where);
    }
}

static void check_same(const char *what, const void *a, const void *b, size_t n, const char *where)
{
    if (memcmp(a, b, n) != 0) {
        failures++;
        printf("FAIL %s not bitwise identical: %s\n", what, where);
    }
}

/* Every check for one shape, one dtype, one SIMD level. */
static void run_case(const fc_conv_shape *s, int is_f32, fc_simd_level simd, const double *xd,
                     const double *wd, const double *bd, const double *gyd, const reference *ref)
{
    char where[256], shape_text[200];
    describe(s, shape_text, sizeof shape_text);
    snprintf(where, sizeof where, "%s %s simd=%d", shape_text, is_f32 ? "f32" : "f64", (int)simd);
    void *x = to_real(xd, x_size(s), is_f32), *w = to_real(wd, w_size(s), is_f32);
    void *b = to_real(bd, s->out_channels, is_f32), *gy = to_real(gyd, y_size(s), is_f32);
    void *y[2], *gx[2], *gw[2], *gb[2];
    for (int t = 0; t < 2; t++) {
        const fc_ctx ctx = {t + 1, simd};
        y[t] = nan_buffer(y_size(s), is_f32);
        gx[t] = nan_buffer(x_size(s), is_f32);
        gw[t] = nan_buffer(w_size(s), is_f32);
        gb[t] = nan_buffer(s->out_channels, is_f32);
        if (forward(is_f32, &ctx, s, x, w, b, y[t]) != FC_OK
            || backward(is_f32, &ctx, s, gy, x, w, gx[t], gw[t], gb[t]) != FC_OK) {
            failures++;
            printf("FAIL status: %s\n", where);
        }
    }
    check("forward", 0, max_error(y[0], ref->y, ref->y_abs, y_size(s), is_f32), is_f32, where);
    check("grad_x", 1, max_error(gx[0], ref->gx, ref->gx_abs, x_size(s), is_f32), is_f32, where);
    check("grad_w", 2, max_error(gw[0], ref->gw, ref->gw_abs, w_size(s), is_f32), is_f32, where);
    check("grad_b", 3, max_error(gb[0], ref->gb, ref->gb_abs, s->out_channels, is_f32), is_f32, where);
    check_same("forward threads 1 vs 2", y[0], y[1], bytes(y_size(s), is_f32), where);
    check_same("grad_x threads 1 vs 2", gx[0], gx[1], bytes(x_size(s), is_f32), where);
    check_same("grad_w threads 1 vs 2", gw[0], gw[1], bytes(w_size(s), is_f32), where);
    check_same("grad_b threads 1 vs 2", gb[0], gb[1], bytes(s->out_channels, is_f32), where);

    /* one backward output at a time; no bias in the forward */
    const fc_ctx ctx = {2, simd};
    void *alone = nan_buffer(x_size(s) > w_size(s) ? x_size(s) : w_size(s), is_f32);
    backward(is_f32, &ctx, s, gy, x, w, alone, NULL, NULL);
    check_same("grad_x alone", alone, gx[0], bytes(x_size(s), is_f32), where);
    backward(is_f32, &ctx, s, gy, x, w, NULL, alone, NULL);
    check_same("grad_w alone", alone, gw[0], bytes(w_size(s), is_f32), where);
    backward(is_f32, &ctx, s, gy, NULL, NULL, NULL, NULL, alone);
    check_same("grad_b alone", alone, gb[0], bytes(s->out_channels, is_f32), where);
    free(alone);
    forward(is_f32, &ctx, s, x, w, NULL, y[1]);
    double worst = 0;
    for (fc_index i = 0; i < y_size(s); i++) {
        const fc_index k = (i / (s->out_h * s->out_w)) % s->out_channels;
        const double expect = (double)(ref->y[i] - bd[k]);
        const double err = fabs(get_real(y[1], i, is_f32) - expect) / (double)ref->y_abs[i];
        if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
    }
    check("forward without bias", 0, worst, is_f32, where);

    for (int t = 0; t < 2; t++) {
        free(y[t]); free(gx[t]); free(gw[t]); free(gb[t]);
    }
    free(x); free(w); free(b); free(gy);
}

static int simd_levels[3], simd_level_count = 0;

static void test_shape(const fc_conv_shape *s)
{
    double *x = malloc(x_size(s) * sizeof(double)), *w = malloc(w_size(s) * sizeof(double));
    double *b = malloc(s->out_channels * sizeof(double)), *gy = malloc(y_size(s) * sizeof(double));
    /* values exactly representable in float, so both dtypes see the same inputs */
    for (fc_index i = 0; i < x_size(s); i++) x[i] = (float)rng_unit();
    for (fc_index i = 0; i < w_size(s); i++) w[i] = (float)rng_unit();
    for (fc_index i = 0; i < s->out_channels; i++) b[i] = (float)rng_unit();
    for (fc_index i = 0; i < y_size(s); i++) gy[i] = (float)rng_unit();
    reference ref;
    reference_compute(s, x, w, b, gy, &ref);
    for (int is_f32 = 0; is_f32 < 2; is_f32++)
        for (int l = 0; l < simd_level_count; l++)
            run_case(s, is_f32, (fc_simd_level)simd_levels[l], x, w, b, gy, &ref);
    reference_free(&ref);
    free(x); free(w); free(b); free(gy);
}

static fc_conv_shape random_shape(void)
{
    for (;;) {
        const int sh = rng_int(1, 3), sw = rng_int(1, 3);
        const int ph = rng_int(0, 3) * (rng_int(0, 3) > 0), pw = rng_int(0, 3) * (rng_int(0, 3) > 0);
        const int h = rng_int(1, 14), w = rng_int(1, rng_int(0, 4) == 0 ? 40 : 14);
        const int max_r = h + 2 * ph, max_s = w + 2 * pw;
        const int r = rng_int(0, 5) == 0 ? max_r : rng_int(1, max_r < 7 ? max_r : 7);
        const int s = rng_int(0, 5) == 0 ? max_s : rng_int(1, max_s < 10 ? max_s : 10);
        /* a quarter of the cases with several vectors of output channels (the kvec forward kernel) */
        const int k = rng_int(0, 3) == 0 ? rng_int(5, 40) : rng_int(1, 4);
        fc_conv_shape shape = make_shape(rng_int(1, 3), rng_int(1, 4), h, w, k, r, s, sh, sw, ph, pw);
        if (shape.out_h >= 1 && shape.out_w >= 1)
            return shape;
    }
}

/* ---- timing -------------------------------------------------------------------------------- */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define BENCH_REPS 41
/* Fastest time (ms) of one call (the machine is shared: the minimum is the least disturbed run); which: 0 forward, 1 grad_x, 2 grad_w (+ grad_b), 3 full backward. */
static double time_call(int is_f32, const fc_ctx *ctx, const fc_conv_shape *s, void *x, void *w, void *b,
                        void *y, void *gx, void *gw, void *gb, int which)
{
    double t[BENCH_REPS];
    for (int rep = -3; rep < BENCH_REPS; rep++) {
        const double start = now();
        if (which == 0) forward(is_f32, ctx, s, x, w, b, y);
        else if (which == 1) backward(is_f32, ctx, s, y, x, w, gx, NULL, NULL);
        else if (which == 2) backward(is_f32, ctx, s, y, x, w, NULL, gw, gb);
        else backward(is_f32, ctx, s, y, x, w, gx, gw, gb);
        if (rep >= 0) t[rep] = now() - start;
    }
    qsort(t, BENCH_REPS, sizeof(double), cmp_double);
    return 1e3 * t[0];
}

static void bench(const char *name, const fc_conv_shape *s)
{
    const double flops = 2.0 * s->batch * s->out_channels * s->in_channels * s->kernel_h * s->kernel_w
                         * s->out_h * s->out_w;
    static const char *level_name[] = {"scalar", "avx2", "avx512"};
    for (int is_f32 = 1; is_f32 >= 0; is_f32--) {
        void *x = nan_buffer(x_size(s), is_f32), *w = nan_buffer(w_size(s), is_f32);
        void *b = nan_buffer(s->out_channels, is_f32), *y = nan_buffer(y_size(s), is_f32);
        void *gx = nan_buffer(x_size(s), is_f32), *gw = nan_buffer(w_size(s), is_f32);
        void *gb = nan_buffer(s->out_channels, is_f32);
        for (fc_index i = 0; i < x_size(s); i++) is_f32 ? (((float *)x)[i] = 0.5f) : (((double *)x)[i] = 0.5);
        for (fc_index i = 0; i < w_size(s); i++) is_f32 ? (((float *)w)[i] = 0.25f) : (((double *)w)[i] = 0.25);
        for (fc_index i = 0; i < s->out_channels; i++) is_f32 ? (((float *)b)[i] = 0.f) : (((double *)b)[i] = 0.);
        for (int l = simd_level_count - 1; l >= 0; l--)
            for (int threads = 1; threads <= 2; threads++) {
                const fc_ctx ctx = {threads, (fc_simd_level)simd_levels[l]};
                const double t_fwd = time_call(is_f32, &ctx, s, x, w, b, y, gx, gw, gb, 0);
                const double t_gx = time_call(is_f32, &ctx, s, x, w, b, y, gx, gw, gb, 1);
                const double t_gw = time_call(is_f32, &ctx, s, x, w, b, y, gx, gw, gb, 2);
                const double t_bwd = time_call(is_f32, &ctx, s, x, w, b, y, gx, gw, gb, 3);
                printf("%-4s %s %-6s threads=%d  fwd %7.3f ms %6.1f GF/s | grad_x %7.3f ms %6.1f GF/s | "
                       "grad_w+b %7.3f ms %6.1f GF/s | bwd all %7.3f ms %6.1f GF/s\n",
                       name, is_f32 ? "f32" : "f64", level_name[simd_levels[l]], threads,
                       t_fwd, flops / t_fwd * 1e-6, t_gx, flops / t_gx * 1e-6, t_gw, flops / t_gw * 1e-6,
                       t_bwd, 2 * flops / t_bwd * 1e-6);
            }
        free(x); free(w); free(b); free(y); free(gx); free(gw); free(gb);
    }
}

int main(int argc, char **argv)
{
    int random_cases = 300, run_bench = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-bench") == 0) run_bench = 0;
        else random_cases = atoi(argv[i]);
    }
    simd_levels[simd_level_count++] = FC_SIMD_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        simd_levels[simd_level_count++] = FC_SIMD_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        simd_levels[simd_level_count++] = FC_SIMD_AVX512;
#endif
    const fc_conv_shape fixed[] = {
        make_shape(4, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),     /* LeNet c1 (small batch) */
        make_shape(3, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0),    /* LeNet c2 */
        make_shape(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0),       /* everything 1 */
        make_shape(2, 3, 7, 9, 2, 1, 1, 1, 1, 0, 0),       /* 1x1 */
        make_shape(2, 3, 7, 9, 2, 1, 1, 2, 3, 0, 0),       /* 1x1 strided */
        make_shape(1, 2, 5, 6, 3, 9, 10, 1, 1, 2, 2),      /* kernel = padded input */
        make_shape(2, 2, 5, 6, 3, 5, 6, 1, 1, 0, 0),       /* kernel = input */
        make_shape(2, 2, 11, 13, 3, 3, 3, 2, 2, 1, 1),     /* stride 2 */
        make_shape(2, 2, 11, 13, 3, 3, 4, 3, 3, 1, 0),     /* stride 3, not dividing */
        make_shape(2, 2, 10, 12, 3, 3, 3, 1, 1, 0, 2),     /* padding on w only */
        make_shape(2, 2, 10, 12, 3, 3, 3, 1, 1, 2, 0),     /* padding on h only */
        make_shape(2, 2, 6, 7, 2, 1, 1, 1, 1, 2, 1),       /* pad > kernel-1: grad_x crop */
        make_shape(2, 2, 6, 7, 2, 2, 3, 1, 1, 3, 3),       /* pad > kernel-1 again */
        make_shape(1, 2, 9, 50, 2, 3, 40, 1, 1, 1, 3),     /* kernel_w > 32: portable fallback */
        make_shape(2, 2, 9, 20, 2, 3, 11, 1, 1, 1, 3),     /* kernel_w 11: grad_w fallback */
        make_shape(2, 3, 12, 40, 2, 3, 3, 1, 1, 1, 1),     /* wide rows: several column chunks */
        make_shape(1, 1, 37, 70, 2, 4, 5, 1, 1, 2, 1),     /* odd sizes, row blocks */
        make_shape(2, 2, 17, 19, 3, 5, 5, 2, 1, 2, 2),     /* stride_h 2, stride_w 1 */
        make_shape(2, 2, 17, 19, 3, 5, 5, 1, 2, 2, 2),     /* stride_h 1, stride_w 2 */
        make_shape(3, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),     /* LeNet C1: wvec forward, wvec rows grad_x */
        make_shape(2, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0),    /* LeNet C3: wvec grad_x */
        make_shape(2, 9, 10, 19, 7, 3, 5, 1, 1, 1, 2),     /* wvec grad_x: 2 channel blocks, 2nd partial */
        make_shape(19, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2),    /* LeNet C1: wvgw, 3 image chunks, last partial */
        make_shape(3, 2, 13, 21, 5, 3, 7, 2, 1, 1, 3),     /* wvgw: S 7 (1 channel a task), stride_h 2 */
        make_shape(2, 2, 9, 17, 7, 2, 4, 1, 1, 1, 0),      /* wvgw: S 4, channel blocks 3 3 1 */
        make_shape(2, 1, 6, 8, 3, 3, 1, 1, 1, 0, 0),       /* wvgw: S 1, rows exactly one vector */
        make_shape(2, 1, 12, 45, 4, 2, 3, 1, 1, 1, 2),     /* wvec rows grad_x: R 2, 2 column blocks */
        make_shape(3, 2, 9, 11, 5, 7, 1, 1, 1, 3, 0),      /* wvec rows grad_x: C 2, R 7 */
        make_shape(2, 1, 10, 8, 3, 1, 1, 1, 1, 0, 0),      /* wvec rows: R 1 (one-row blocks) */
        make_shape(2, 2, 7, 31, 33, 3, 3, 1, 1, 1, 1),     /* kvec: rows of 31 (12+12+7), a last group of 1 */
        make_shape(2, 4, 11, 15, 12, 3, 3, 1, 1, 0, 0),    /* kvec: 12 channels, out 9 x 13 (a one-row block) */
        make_shape(2, 3, 13, 29, 20, 3, 3, 1, 2, 1, 1),    /* kvec: stride_w 2 (run-time column step) */
        make_shape(3, 3, 13, 11, 37, 3, 3, 2, 2, 1, 1),    /* kvgw: K 37 (a last vector of 5), 7 x 6 pixels */
        make_shape(2, 2, 5, 5, 20, 3, 3, 2, 2, 1, 1),      /* kvgw: 3 x 3 pixels, fewer than a vector's lanes */
    };
    const int fixed_count = (int)(sizeof fixed / sizeof fixed[0]);
    for (int i = 0; i < fixed_count; i++)
        test_shape(&fixed[i]);
    for (int i = 0; i < random_cases; i++) {
        const fc_conv_shape s = random_shape();
        test_shape(&s);
    }
    printf("%d fixed + %d random shapes, SIMD levels tested:", fixed_count, random_cases);
    for (int l = 0; l < simd_level_count; l++) printf(" %d", simd_levels[l]);
    printf("\nmax error (|got-ref| / sum|terms|):\n");
    for (int is_f32 = 1; is_f32 >= 0; is_f32--)
        printf("  %s: forward %.3g  grad_x %.3g  grad_w %.3g  grad_b %.3g\n", is_f32 ? "f32" : "f64",
               worst_err[is_f32][0], worst_err[is_f32][1], worst_err[is_f32][2], worst_err[is_f32][3]);
    printf("%s (%d failures)\n", failures ? "FAILED" : "ALL OK", failures);
    if (run_bench) {
        const fc_conv_shape c1 = make_shape(64, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2);
        const fc_conv_shape c2 = make_shape(64, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0);
        bench("c1", &c1);
        bench("c2", &c2);
    }
    return failures != 0;
}
