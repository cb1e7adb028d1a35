/*
 * test_gemm.c -- correctness test and benchmark of fc_gemm_f32 / fc_gemm_f64 (not built by the package).
 *
 *   gcc -O3 -std=gnu99 -fopenmp -ffp-contract=fast -Isrc_c tests/c/test_gemm.c src_c/gemm*.c \
 *       src_c/simd.c -o /tmp/tg -lm
 *   /tmp/tg            correctness: random shapes x strides x alpha/beta x SIMD levels x 1/2 threads
 *   /tmp/tg bench      GFLOP/s of the shapes in the acceptance list (1 and 2 threads, f32 and f64)
 *   /tmp/tg bench M N K [threads [simd [bt]]]    one shape, f32 and f64 (1 thread: timed in CPU time);
 *                      bt: B stored transposed (as conv_im2col.c's grad_w reads its columns)
 *
 * Correctness: every result is compared with a naive triple loop in long double, with a tolerance
 * scaled by sum_p |a_ip b_pj| (the size of the rounding errors a reordered sum can make). C is
 * surrounded by sentinel values (ldc > N, rows before and after) that must survive; with beta == 0
 * C starts as NaN, which must not leak. For every case the 2-thread result must equal the 1-thread
 * result bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastconv.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_uniform(void) { return (double)(rng_next() >> 11) / 9007199254740992.0 * 2 - 1; }
static fc_index rng_int(fc_index lo, fc_index hi) { return lo + (fc_index)(rng_next() % (uint64_t)(hi - lo + 1)); }

/* Wall time, or the process's CPU time: on one thread that is the time the GEMM ran, whatever else
 * shares the machine (the bench uses it for 1-thread runs). */
static double now_seconds(int cpu_time)
{
    struct timespec ts;
    clock_gettime(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One test case: sizes, operand layouts and scalars. */
typedef struct {
    fc_index M, N, K;
    int a_trans, b_trans;      /* operand stored transposed (column-major) */
    fc_index a_pad, b_pad;     /* extra leading-dimension padding */
    fc_index c_pad;            /* ldc = N + c_pad */
    double alpha, beta;
} gemm_case;

static long failures = 0, checks = 0;

#define SENTINEL 12345.0
#define C_GUARD_ROWS 2

/* ---- Type-generic test code, instantiated for float and double ---------------------------------- */
#define DEFINE_TESTS(real, sfx)                                                                    \
static void strides_##sfx(const gemm_case *tc, fc_index *rs_a, fc_index *cs_a, fc_index *rs_b,      \
                          fc_index *cs_b, fc_index *a_size, fc_index *b_size)                       \
{                                                                                                  \
    if (tc->a_trans) { *rs_a = 1; *cs_a = tc->M + tc->a_pad; *a_size = *cs_a * tc->K; }            \
    else { *rs_a = tc->K + tc->a_pad; *cs_a = 1; *a_size = *rs_a * tc->M; }                        \
    if (tc->b_trans) { *rs_b = 1; *cs_b = tc->K + tc->b_pad; *b_size = *cs_b * tc->N; }            \
    else { *rs_b = tc->N + tc->b_pad; *cs_b = 1; *b_size = *rs_b * tc->K; }                        \
}                                                                                                  \
                                                                                                   \
/* Runs one case at one SIMD level with 1 and 2 threads; returns 0 on success. */                  \
static int run_case_##sfx(const gemm_case *tc, fc_simd_level level)                                \
{                                                                                                  \
    fc_index rs_a, cs_a, rs_b, cs_b, a_size, b_size;                                               \
    strides_##sfx(tc, &rs_a, &cs_a, &rs_b, &cs_b, &a_size, &b_size);                               \
    const fc_index M = tc->M, N = tc->N, K = tc->K, ldc = N + tc->c_pad;                           \
    const fc_index c_size = (M + 2 * C_GUARD_ROWS) * ldc;                                          \
    real *A = malloc((size_t)(a_size + 1) * sizeof(real));                                         \
    real *B = malloc((size_t)(b_size + 1) * sizeof(real));                                         \
    real *C0 = malloc((size_t)c_size * sizeof(real));                                              \
    real *C1 = malloc((size_t)c_size * sizeof(real));                                              \
    real *C2 = malloc((size_t)c_size * sizeof(real));                                              \
    int bad = 0;                                                                                   \
    for (fc_index i = 0; i < a_size; i++) A[i] = (real)rng_uniform();                              \
    for (fc_index i = 0; i < b_size; i++) B[i] = (real)rng_uniform();                              \
    for (fc_index i = 0; i < c_size; i++) C0[i] = SENTINEL;                                        \
    for (fc_index i = 0; i < M; i++)                                                               \
        for (fc_index j = 0; j < N; j++)                                                           \
            C0[(i + C_GUARD_ROWS) * ldc + j] = tc->beta == 0 ? (real)NAN : (real)rng_uniform();    \
    memcpy(C1, C0, (size_t)c_size * sizeof(real));                                                 \
    memcpy(C2, C0, (size_t)c_size * sizeof(real));                                                 \
    real *c1 = C1 + C_GUARD_ROWS * ldc, *c2 = C2 + C_GUARD_ROWS * ldc;                              \
    fc_ctx one = { 1, level }, two = { 2, level };                                                 \
    int s1 = fc_gemm_##sfx(&one, M, N, K, (real)tc->alpha, A, rs_a, cs_a, B, rs_b, cs_b,          \
                           (real)tc->beta, c1, ldc);                                               \
    int s2 = fc_gemm_##sfx(&two, M, N, K, (real)tc->alpha, A, rs_a, cs_a, B, rs_b, cs_b,          \
                           (real)tc->beta, c2, ldc);                                               \
    if (s1 != FC_OK || s2 != FC_OK) bad |= 1;                                                      \
    if (memcmp(C1, C2, (size_t)c_size * sizeof(real)) != 0) bad |= 2;                              \
    const double eps = sizeof(real) == 4 ? 1.2e-7 : 2.3e-16;                                       \
    for (fc_index i = -C_GUARD_ROWS; i < M + C_GUARD_ROWS && !bad; i++)                            \
        for (fc_index j = 0; j < ldc && !bad; j++) {                                               \
            double got = c1[i * ldc + j];                                                          \
            if (i < 0 || i >= M || j >= N) {                                                       \
                if (got != SENTINEL) bad |= 4;                                                     \
                continue;                                                                          \
            }                                                                                      \
            long double sum = 0, mag = 0;                                                          \
            for (fc_index p = 0; p < K; p++) {                                                     \
                long double term = (long double)A[i * rs_a + p * cs_a] * B[p * rs_b + j * cs_b];   \
                sum += term;                                                                       \
                mag += fabsl(term);                                                                \
            }                                                                                      \
            long double c_old = C0[(i + C_GUARD_ROWS) * ldc + j];                                  \
            long double want = tc->alpha * sum + (tc->beta == 0 ? 0 : tc->beta * c_old);           \
            long double tol = 4 * eps * ((K + 2) * fabs(tc->alpha) * mag                           \
                                         + fabs(tc->beta) * fabsl(tc->beta == 0 ? 0 : c_old)) + 1e-300; \
            if (!(fabsl(got - want) <= tol)) bad |= 8;                                             \
        }                                                                                          \
    checks++;                                                                                      \
    if (bad) {                                                                                     \
        failures++;                                                                                \
        printf("FAIL %s %s M=%ld N=%ld K=%ld aT=%d bT=%d pads=%ld,%ld,%ld alpha=%g beta=%g code=%d\n", \
               #sfx, fc_simd_name(level), (long)M, (long)N, (long)K, tc->a_trans, tc->b_trans,    \
               (long)tc->a_pad, (long)tc->b_pad, (long)tc->c_pad, tc->alpha, tc->beta, bad);       \
    }                                                                                              \
    free(A); free(B); free(C0); free(C1); free(C2);                                                \
    return bad;                                                                                    \
}                                                                                                  \
                                                                                                   \
/* Best-of-reps GFLOP/s of C = A B (row-major, or with a transposed operand). */                   \
static double bench_##sfx(fc_index M, fc_index N, fc_index K, int a_trans, int b_trans,           \
                          int threads, fc_simd_level level)                                        \
{                                                                                                  \
    real *A = malloc((size_t)(M * K) * sizeof(real));                                              \
    real *B = malloc((size_t)(K * N) * sizeof(real));                                              \
    real *C = malloc((size_t)(M * N) * sizeof(real));                                              \
    for (fc_index i = 0; i < M * K; i++) A[i] = (real)rng_uniform();                               \
    for (fc_index i = 0; i < K * N; i++) B[i] = (real)rng_uniform();                               \
    fc_index rs_a = a_trans ? 1 : K, cs_a = a_trans ? M : 1;                                       \
    fc_index rs_b = b_trans ? 1 : N, cs_b = b_trans ? K : 1;                                       \
    fc_ctx ctx = { threads, level };                                                               \
    double flops = 2.0 * M * N * K, best = 1e30;                                                   \
    int reps = (int)(1.5e9 / flops) + 2;                                                           \
    fc_gemm_##sfx(&ctx, M, N, K, 1, A, rs_a, cs_a, B, rs_b, cs_b, 0, C, N);                       \
    for (int trial = 0; trial < 5; trial++) {                                                      \
        double t0 = now_seconds(threads == 1);                                                                 \
        for (int r = 0; r < reps; r++)                                                             \
            fc_gemm_##sfx(&ctx, M, N, K, 1, A, rs_a, cs_a, B, rs_b, cs_b, 0, C, N);               \
        double t = (now_seconds(threads == 1) - t0) / reps;                                                    \
        if (t < best) best = t;                                                                    \
    }                                                                                              \
    free(A); free(B); free(C);                                                                     \
    return flops / best * 1e-9;                                                                    \
}

DEFINE_TESTS(float, f32)
DEFINE_TESTS(double, f64)

static gemm_case random_case(fc_index max_dim, fc_index max_k)
{
    static const double alphas[] = { 1, -1.5, 0.25 };
    static const double betas[] = { 0, 1, 0.5 };
    gemm_case tc;
    tc.M = rng_int(1, max_dim);
    tc.N = rng_int(1, max_dim);
    tc.K = rng_int(1, max_k);
    tc.a_trans = (int)rng_int(0, 1);
    tc.b_trans = (int)rng_int(0, 1);
    tc.a_pad = rng_int(0, 1) * rng_int(1, 5);
    tc.b_pad = rng_int(0, 1) * rng_int(1, 5);
    tc.c_pad = rng_int(0, 3);
    tc.alpha = alphas[rng_int(0, 2)];
    tc.beta = betas[rng_int(0, 2)];
    return tc;
}

static void run_all_levels(const gemm_case *tc)
{
    for (int level = 0; level <= (int)fc_simd_best(); level++) {
        run_case_f32(tc, (fc_simd_level)level);
        run_case_f64(tc, (fc_simd_level)level);
    }
}

static int correctness(void)
{
    /* Fixed shapes: the degenerate ones, tile and block edges (MR 4/6, NR 8..64, KC 256 / 512, MC, NC). */
    static const fc_index fixed[][3] = {
        {1, 1, 1}, {1, 1, 7}, {1, 17, 1}, {6, 64, 1}, {7, 65, 3}, {5, 63, 257}, {6, 32, 256},
        {12, 128, 512}, {13, 129, 513}, {150, 130, 513}, {16, 6400, 150}, {50, 1210, 225}, {6, 784, 25},
        {145, 70, 300}, {300, 2100, 40}, {97, 4100, 9}, {1, 3000, 300}, {3000, 1, 300},
        {150, 16, 6400}, {25, 6, 784}, {0, 5, 5}, {5, 0, 5}, {5, 5, 0},
        /* B exactly NR wide (AVX-512 f32 / f64), read in place when unpadded; narrow edges (masked) */
        {128, 64, 576}, {45, 32, 300}, {16, 100, 150}, {20, 17, 33},
    };
    const size_t n_fixed = sizeof fixed / sizeof fixed[0];
    for (size_t f = 0; f < n_fixed; f++)
        for (int variant = 0; variant < 6; variant++) {
            gemm_case tc = random_case(8, 8);
            tc.M = fixed[f][0]; tc.N = fixed[f][1]; tc.K = fixed[f][2];
            tc.a_trans = variant & 1;
            tc.b_trans = (variant >> 1) & 1;
            tc.beta = (double[]){ 0, 1, 0.5 }[variant % 3];
            run_all_levels(&tc);
        }
    for (int r = 0; r < 300; r++) {
        gemm_case tc = random_case(r < 200 ? 40 : 300, r < 200 ? 40 : 600);
        run_all_levels(&tc);
    }
    printf("correctness: %ld checks (each: 1 vs 2 threads bitwise + reference), %ld failures; "
           "levels tested: scalar..%s\n", checks, failures, fc_simd_name(fc_simd_best()));
    return failures != 0;
}

static void bench_table(void)
{
    static const fc_index shapes[][5] = {   /* M, N, K, a_trans, b_trans */
        {256, 256, 256, 0, 0}, {512, 512, 512, 0, 0}, {1024, 1024, 1024, 0, 0},
        {2048, 2048, 2048, 0, 0}, {128, 8192, 576, 0, 0}, {16, 6400, 150, 0, 0},
        {50, 12100, 225, 0, 0},
        /* conv backward shapes: dcol = W^T dY (A transposed), dW = dY col^T (B transposed) */
        {576, 8192, 128, 1, 0}, {150, 6400, 16, 1, 0}, {128, 576, 8192, 0, 1}, {16, 150, 6400, 0, 1},
    };
    const fc_simd_level level = fc_simd_best();
    printf("GFLOP/s, simd=%s        f32 1thr  f32 2thr  f64 1thr  f64 2thr\n", fc_simd_name(level));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const fc_index *sh = shapes[s];
        printf("%5ld x %5ld x %5ld %s%s   ", (long)sh[0], (long)sh[1], (long)sh[2],
               sh[3] ? "A^T" : "   ", sh[4] ? "B^T" : "   ");
        printf("%8.1f  %8.1f  ", bench_f32(sh[0], sh[1], sh[2], (int)sh[3], (int)sh[4], 1, level),
               bench_f32(sh[0], sh[1], sh[2], (int)sh[3], (int)sh[4], 2, level));
        printf("%8.1f  %8.1f\n", bench_f64(sh[0], sh[1], sh[2], (int)sh[3], (int)sh[4], 1, level),
               bench_f64(sh[0], sh[1], sh[2], (int)sh[3], (int)sh[4], 2, level));
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "bench") == 0) {
        int threads = argc >= 6 ? atoi(argv[5]) : 2;
        fc_simd_level level = argc >= 7 ? (fc_simd_level)fc_simd_resolve(argv[6]) : fc_simd_best();
        int b_trans = argc >= 8 && strcmp(argv[7], "bt") == 0;
        fc_index M = atol(argv[2]), N = atol(argv[3]), K = atol(argv[4]);
        printf("%ld x %ld x %ld%s %s f32 %d thr: %.1f GFLOP/s  f64: %.1f\n", (long)M, (long)N,
               (long)K, b_trans ? " (B^T)" : "", fc_simd_name(level), threads,
               bench_f32(M, N, K, 0, b_trans, threads, level),
               bench_f64(M, N, K, 0, b_trans, threads, level));
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
        bench_table();
        return 0;
    }
    printf("simd best: %s, openmp: %d, max threads: %d, resolve(\"avx2\")=%d resolve(\"bogus\")=%d\n",
           fc_simd_name(fc_simd_best()), fc_have_openmp(), fc_max_threads(),
           fc_simd_resolve("avx2"), fc_simd_resolve("bogus"));
    return correctness();
}
