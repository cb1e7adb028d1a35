/*
 * gemm.c -- C = alpha * A B + beta * C, BLIS-style (contract: fastconv.h, fc_gemm_f32/_f64).
 *
 * The five loops around the micro-kernel (blocking parameters: gemm_config.h):
 *
 *   for jc in N step NC:                      columns of C
 *     for pc in K step KC:                    depth; one rank-KC update of C per step
 *       pack B[pc:pc+KC, jc:jc+NC]            -> b_pack (NR-wide micro-panels, shared by the team)
 *       for ic in M step MC:                  rows of C
 *         pack A[ic:ic+MC, pc:pc+KC]          -> a_pack (MR-tall micro-panels, one per thread)
 *         for jr in NC step NR:               macro-kernel:
 *           for ir in MC step MR:               micro-kernel on the MR x NR tile C[ic+ir, jc+jr]
 *
 * Packing copies each block once into the exact order the micro-kernel reads, zero-padding partial
 * micro-panels, so the micro-kernel never sees an edge. When A is only a few MR rows tall, B's full
 * micro-panels are read in place instead (the micro-kernel takes B's row stride, ldb). Only the
 * right edge of C (fewer than NR columns left) needs care: the plan's edge kernel computes just those
 * columns (AVX-512, masked), or else that tile is computed into a local MR x NR buffer and its valid
 * part merged into C.
 *
 * Threads (one parallel region per call, none for one thread) split the packing of B and C, by B's
 * micro-panels (each thread computes with the panels it packed, no waiting) or by rows in whole MR
 * tiles (all threads read every packed panel, with barriers around the packing), whichever keeps
 * packing and cache traffic lower (gemm_thread). Every C element is computed by
 * one thread, on the same MR x NR tile grid and with the same KC steps whatever the thread count, so
 * the result is bitwise identical for any num_threads.
 */
#ifndef FC_TEMPLATE_PASS

#include <stdlib.h>
#include <string.h>

#include "fc_compiler.h"
#include "gemm_kernels.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#define FC_GEMM_HAVE_SSE2 1
#endif

#define FC_GEMM_ALIGN 64   /* bytes: one cache line, and one AVX-512 vector */

static fc_index fc_gemm_min(fc_index a, fc_index b) { return a < b ? a : b; }
static fc_index fc_gemm_ceil_div(fc_index a, fc_index b) { return (a + b - 1) / b; }
static fc_index fc_gemm_round_up(fc_index a, fc_index b) { return fc_gemm_ceil_div(a, b) * b; }
/* A cache block that is a whole number of register blocks (at least one). */
static fc_index fc_gemm_round_down(fc_index a, fc_index b) { return a < b ? b : a / b * b; }

void *fc_gemm_alloc(size_t bytes)
{
    void *ptr = NULL;
    size_t rounded = (bytes + FC_GEMM_ALIGN - 1) / FC_GEMM_ALIGN * FC_GEMM_ALIGN;
    if (posix_memalign(&ptr, FC_GEMM_ALIGN, rounded ? rounded : FC_GEMM_ALIGN) != 0)
        return NULL;
    return ptr;
}

#define FC_TEMPLATE_FILE "gemm.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS */

#define gemm_plan FC_CAT(fc_gemm_plan, FC_SUFFIX)
#define gemm_ukernel FC_CAT(fc_gemm_ukernel, FC_SUFFIX)

/* One call's operands and the sizes of its current blocks, shared by the whole team. */
typedef struct {
    fc_index M, N, K;
    real alpha, beta;
    const real *A;
    fc_index rs_a, cs_a;
    const real *B;
    fc_index rs_b, cs_b;
    real *C;
    fc_index ldc;
    gemm_plan plan;
    fc_index mc, kc, nc;      /* cache blocks of this call (<= the plan's, and MC % MR == 0) */
    int b_in_place;           /* B's full micro-panels read where they are (see fc_gemm) */
    int b_packed;             /* some panel of B is packed (else b_pack is unused, and no barriers) */
    real *b_pack;             /* KC x NC, shared */
    real *a_packs;            /* one MC x KC block per thread */
} FC_FN(gemm_call);

/* Wait for the whole team. A team of one runs outside any parallel region of its own (it may be
 * inside a caller's, where a barrier would wait for that caller's threads), and needs none. */
static void FC_FN(team_barrier)(int team)
{
    if (team > 1) {
#pragma omp barrier
    }
}

/* ---- Packing ------------------------------------------------------------------------------------ */

/* True if B's micro-panel of n columns is read where it is: a full one when B is read in place, and
 * an edge one too when the plan's edge kernel touches only the n columns. */
static int FC_FN(panel_in_place)(const FC_FN(gemm_call) *call, fc_index n)
{
    return call->b_in_place && (n == call->plan.blocks.nr || call->plan.edge_ukernel != NULL);
}

#if defined(FC_GEMM_HAVE_SSE2) && FC_IS_F32
/* Up to six contiguous rows of A (float, m of them; the panel's rows m..5 zero) -> a 6-tall panel, four
 * columns at a time: a 4x4 transpose of rows 0-3 and the interleave of rows 4-5 give the four columns'
 * 24 values in 8 stores instead of 24. With a row-major A the scalar loop was a gather down the
 * columns. Measured on 128x64x576 (1 thread, AVX2, `tests/c/test_gemm.c` built as its header says,
 * `bench 128 64 576 1`, best of 6): 60.7 GFLOP/s, 76.6 with this. The last panel of 16x100x150 (4 rows)
 * took 13% of that GEMM's time through the scalar loop. Returns the columns packed, k rounded down to
 * a multiple of 4. */
static fc_index FC_FN(pack_a_rows6)(const real *A, fc_index rs_a, fc_index m, fc_index k,
                                    real *restrict a_pack)
{
    const real *rows[6];
    for (fc_index i = 0; i < 6; i++)
        rows[i] = A + (i < m ? i : 0) * rs_a;   /* rows past m: any valid row, masked to zero below */
    const real *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4], *r5 = rows[5];
    __m128 keep[6];
    for (fc_index i = 0; i < 6; i++)
        keep[i] = _mm_castsi128_ps(_mm_set1_epi32(i < m ? -1 : 0));
    fc_index p = 0;
    for (; p + 4 <= k; p += 4) {
        __m128 c0 = _mm_loadu_ps(r0 + p), c1 = _mm_and_ps(_mm_loadu_ps(r1 + p), keep[1]),
               c2 = _mm_and_ps(_mm_loadu_ps(r2 + p), keep[2]), c3 = _mm_and_ps(_mm_loadu_ps(r3 + p), keep[3]);
        const __m128 r4p = _mm_and_ps(_mm_loadu_ps(r4 + p), keep[4]);
        const __m128 r5p = _mm_and_ps(_mm_loadu_ps(r5 + p), keep[5]);
        const __m128 lo45 = _mm_unpacklo_ps(r4p, r5p);
        const __m128 hi45 = _mm_unpackhi_ps(r4p, r5p);
        real *dst = a_pack + p * 6;
        _MM_TRANSPOSE4_PS(c0, c1, c2, c3);
        _mm_storeu_ps(dst, c0);
        _mm_storel_pi((__m64 *)(dst + 4), lo45);
        _mm_storeu_ps(dst + 6, c1);
        _mm_storeh_pi((__m64 *)(dst + 10), lo45);
        _mm_storeu_ps(dst + 12, c2);
        _mm_storel_pi((__m64 *)(dst + 16), hi45);
        _mm_storeu_ps(dst + 18, c3);
        _mm_storeh_pi((__m64 *)(dst + 22), hi45);
    }
    return p;
}
#endif

/* A[0:m, 0:k] (m <= mr, general strides) -> a_pack, column p at a_pack[p*mr], rows >= m zero
 * (inline loops: a memset call per column cost more than the column). */
static FC_INLINE_LOOPS void FC_FN(pack_a_panel)(const real *A, fc_index rs_a, fc_index cs_a, fc_index m,
                                                fc_index k, int mr, real *restrict a_pack)
{
    fc_index p = 0;
#if defined(FC_GEMM_HAVE_SSE2) && FC_IS_F32
    if (cs_a == 1 && mr == 6)
        p = FC_FN(pack_a_rows6)(A, rs_a, m, k, a_pack);   /* the last k % 4 columns below */
#endif
    for (; p < k; p++) {
        const real *a_col = A + p * cs_a;
        real *dst = a_pack + p * mr;
        for (fc_index i = 0; i < m; i++)
            dst[i] = a_col[i * rs_a];
        for (fc_index i = m; i < mr; i++)
            dst[i] = 0;
    }
}

/* B[0:k, 0:n] (n <= nr, general strides) -> b_pack, row p at b_pack[p*nr], columns >= n zero.
 * Rows are one micro-panel wide: copied by inline loops, not a memcpy call per row (FC_INLINE_LOOPS). */
static FC_INLINE_LOOPS void FC_FN(pack_b_panel)(const real *B, fc_index rs_b, fc_index cs_b,
                                                fc_index k, fc_index n, int nr,
                                                real *restrict b_pack)
{
    if (cs_b == 1 && n == nr) {            /* rows of B are contiguous: plain copies */
        for (fc_index p = 0; p < k; p++) {
            const real *src = B + p * rs_b;
            real *dst = b_pack + p * nr;
            for (int j = 0; j < nr; j++)
                dst[j] = src[j];
        }
        return;
    }
    if (n < nr)
        memset(b_pack, 0, (size_t)(k * nr) * sizeof(real));
    if (rs_b == 1) {                       /* B transposed: walk down its contiguous columns */
        for (fc_index j = 0; j < n; j++)
            for (fc_index p = 0; p < k; p++)
                b_pack[p * nr + j] = B[j * cs_b + p];
    } else {
        for (fc_index p = 0; p < k; p++)
            for (fc_index j = 0; j < n; j++)
                b_pack[p * nr + j] = B[p * rs_b + j * cs_b];
    }
}

/* Pack the KC x NC block of B at (pc, jc); thread `me` of `team` packs its even share of the
 * micro-panels (panel jr at b_pack + jr * NR * call->kc, the same place at every KC step), then, with
 * `wait`, waits for the others. When B is read in place, only a right-edge panel (fewer than NR
 * columns) is packed, and none with the plan's edge kernel. */
static void FC_FN(pack_b_block)(const FC_FN(gemm_call) *call, fc_index pc, fc_index jc,
                                fc_index kc, fc_index nc, int me, int team, int wait)
{
    const int nr = call->plan.blocks.nr;
    const fc_index panels = fc_gemm_ceil_div(nc, nr);

    for (fc_index jr = panels * me / team; jr < panels * (me + 1) / team; jr++) {
        const real *B = call->B + pc * call->rs_b + (jc + jr * nr) * call->cs_b;
        const fc_index n = fc_gemm_min(nr, nc - jr * nr);
        if (FC_FN(panel_in_place)(call, n))
            continue;
        FC_FN(pack_b_panel)(B, call->rs_b, call->cs_b, kc, n, nr,
                            call->b_pack + jr * nr * call->kc);
    }
    if (wait)
        FC_FN(team_barrier)(team);
}

/* Pack the MC x KC block of A at (ic, pc) into this thread's a_pack. */
static void FC_FN(pack_a_block)(const FC_FN(gemm_call) *call, fc_index ic, fc_index pc,
                                fc_index mc, fc_index kc, real *a_pack)
{
    const int mr = call->plan.blocks.mr;

    for (fc_index ir = 0; ir < mc; ir += mr) {
        const real *A = call->A + (ic + ir) * call->rs_a + pc * call->cs_a;
        FC_FN(pack_a_panel)(A, call->rs_a, call->cs_a, fc_gemm_min(mr, mc - ir), kc, mr,
                            a_pack + ir * kc);
    }
}

/* All of A (M x K), packed once for every KC step of `plan`: the block of the KC step starting at
 * depth pc is at a_all + pc * round_up(M, MR), its micro-panel ir at + ir * kc (kc: that step's depth),
 * the layout pack_a_block gives one block. a_all holds fc_gemm_packed_a_size(&plan->blocks, M, K) elements. */
void FC_FN(fc_gemm_pack_a_all)(const gemm_plan *plan, const real *A, fc_index rs_a, fc_index cs_a,
                               fc_index M, fc_index K, real *a_all)
{
    const int mr = plan->blocks.mr;
    const fc_index m_pad = fc_gemm_round_up(M, mr);

    for (fc_index pc = 0; pc < K; pc += plan->blocks.kc) {
        const fc_index kc = fc_gemm_min(plan->blocks.kc, K - pc);
        for (fc_index ir = 0; ir < M; ir += mr)
            FC_FN(pack_a_panel)(A + ir * rs_a + pc * cs_a, rs_a, cs_a, fc_gemm_min(mr, M - ir), kc,
                                mr, a_all + pc * m_pad + ir * kc);
    }
}

/* ---- Macro-kernel ------------------------------------------------------------------------------ */

/* The right-edge tile: run the micro-kernel on a local NR-wide tile, then merge n columns into C. */
static void FC_FN(edge_tile)(const gemm_plan *plan, int m, fc_index n, fc_index kc, real alpha,
                             const real *a_panel, const real *b_panel, real beta, real *c,
                             fc_index ldc)
{
    enum { MAX_TILE = 16 * 64 };  /* >= MR * NR of every plan */
    _Alignas(64) real tile[MAX_TILE];
    const int nr = plan->blocks.nr;

    plan->ukernel(m, kc, alpha, a_panel, b_panel, nr, 0, tile, nr);
    for (int i = 0; i < m; i++) {
        real *c_row = c + i * ldc;
        const real *t_row = tile + i * nr;
        if (beta == 0) {
            for (fc_index j = 0; j < n; j++)
                c_row[j] = t_row[j];
        } else {
            for (fc_index j = 0; j < n; j++)
                c_row[j] = beta * c_row[j] + t_row[j];
        }
    }
}

/* C (m x n) = beta C + alpha A B for one B micro-panel (kc rows ldb apart; n <= NR valid columns,
 * ldb == NR, packed, when n < NR and the plan has no edge kernel) and the m rows of a packed A block
 * (MR-tall micro-panels, kc long each): the micro-kernel down C. */
static void FC_FN(multiply_panel)(const gemm_plan *plan, fc_index m, fc_index n, fc_index kc,
                                  real alpha, const real *a_block, const real *b, fc_index ldb,
                                  real beta, real *c, fc_index ldc)
{
    const int mr = plan->blocks.mr, nr = plan->blocks.nr;

    for (fc_index ir = 0; ir < m; ir += mr) {
        const int rows = (int)fc_gemm_min(mr, m - ir);
        if (n == nr)
            plan->ukernel(rows, kc, alpha, a_block + ir * kc, b, ldb, beta, c + ir * ldc, ldc);
        else if (plan->edge_ukernel != NULL)
            plan->edge_ukernel(rows, (int)n, kc, alpha, a_block + ir * kc, b, ldb, beta,
                               c + ir * ldc, ldc);
        else
            FC_FN(edge_tile)(plan, rows, n, kc, alpha, a_block + ir * kc, b, beta, c + ir * ldc, ldc);
    }
}

void FC_FN(fc_gemm_multiply_panel)(const gemm_plan *plan, fc_index m, fc_index n, fc_index kc,
                                   real alpha, const real *a_block, const real *b_panel, real beta,
                                   real *c, fc_index ldc)
{
    FC_FN(multiply_panel)(plan, m, n, kc, alpha, a_block, b_panel, plan->blocks.nr, beta, c, ldc);
}

/* Micro-panels [jr_begin, jr_end) of the packed B block times the packed A block (mc rows),
 * into C at (ic, jc). beta is the caller's for the first KC step and 1 after it. */
static void FC_FN(macro_kernel)(const FC_FN(gemm_call) *call, const real *a_pack, fc_index ic,
                                fc_index mc, fc_index pc, fc_index jc, fc_index nc, fc_index kc,
                                fc_index jr_begin, fc_index jr_end, real beta)
{
    const int nr = call->plan.blocks.nr;

    for (fc_index jr = jr_begin; jr < jr_end; jr++) {
        const fc_index n = fc_gemm_min(nr, nc - jr * nr);
        const int in_place = FC_FN(panel_in_place)(call, n);
        const real *b = in_place ? call->B + pc * call->rs_b + jc + jr * nr
                                 : call->b_pack + jr * nr * call->kc;
        FC_FN(multiply_panel)(&call->plan, mc, n, kc, call->alpha, a_pack, b,
                              in_place ? call->rs_b : nr, beta,
                              call->C + ic * call->ldc + jc + jr * nr, call->ldc);
    }
}

/* ---- The loops of one thread (called by every member of the team) ---------------------------- */

static void FC_FN(gemm_thread)(const FC_FN(gemm_call) *call, int me, int team)
{
    const int mr = call->plan.blocks.mr, nr = call->plan.blocks.nr;
    real *a_pack = call->a_packs + (fc_index)me * call->mc * call->kc;
    /* How the team splits C (both keep the MR x NR tile grid anchored at (0, 0), so the split never
     * changes a result):
     *  - B's panels, when A is one MC block and each thread gets at least
     *    FC_GEMM_SPLIT_COLS_MIN_COLUMNS columns: every thread packs the whole (small) A, and computes
     *    with exactly the B panels it packed itself (pack_b_block splits them the same way), which are
     *    still in its own cache, and no thread waits for another. Measured with `python
     *    bench/gemm_threads.py`, 2 threads, AVX2: 64x256x288
     *    109 GFLOP/s this way vs 72 with rows, 128x1024x576 147 vs 132.
     *  - else rows, evenly in whole MR tiles, when there are at least two per thread: each thread
     *    packs only its rows of A. 1024^3: 180 GFLOP/s vs 162 with whole MC blocks per thread (8
     *    blocks of 144 rows, the last of 16, split 4 + 4); 128x64x576: 82 vs 61 with B's 4 panels.
     *  - else (a few rows) B's panels, however few. */
    const fc_index row_tiles = fc_gemm_ceil_div(call->M, mr);
    const fc_index full_panels = fc_gemm_ceil_div(call->nc, nr);
    const int split_cols = call->M <= call->mc
                           && full_panels * nr >= FC_GEMM_SPLIT_COLS_MIN_COLUMNS * (fc_index)team;
    const int split_rows = !split_cols && row_tiles >= 2 * (fc_index)team;
    /* Split by rows, every thread reads B panels the others packed: wait after their packing. */
    const int shared_b = split_rows && call->b_packed && team > 1;
    const fc_index row_begin = split_rows ? row_tiles * me / team * mr : 0;
    const fc_index row_end = split_rows ? fc_gemm_min(call->M, row_tiles * (me + 1) / team * mr)
                                        : call->M;

    for (fc_index jc = 0; jc < call->N; jc += call->nc) {
        const fc_index nc = fc_gemm_min(call->nc, call->N - jc);
        const fc_index jr_panels = fc_gemm_ceil_div(nc, nr);
        const fc_index jr_begin = split_rows ? 0 : jr_panels * me / team;
        const fc_index jr_end = split_rows ? jr_panels : jr_panels * (me + 1) / team;
        for (fc_index pc = 0; pc < call->K; pc += call->kc) {
            const fc_index kc = fc_gemm_min(call->kc, call->K - pc);
            const real beta = pc == 0 ? call->beta : (real)1;

            FC_FN(pack_b_block)(call, pc, jc, kc, nc, me, team, shared_b);
            for (fc_index ic = row_begin; ic < row_end && jr_begin < jr_end; ic += call->mc) {
                const fc_index mc = fc_gemm_min(call->mc, row_end - ic);
                FC_FN(pack_a_block)(call, ic, pc, mc, kc, a_pack);
                FC_FN(macro_kernel)(call, a_pack, ic, mc, pc, jc, nc, kc, jr_begin, jr_end, beta);
            }
            /* b_pack is overwritten by the next step: by every thread when they share it; else each
             * thread keeps to its own panels (at the same place every step) until the next column
             * block, whose split differs. After the last step the parallel region's barrier follows. */
            const int block_done = pc + kc >= call->K, more = !block_done || jc + nc < call->N;
            if (call->b_packed && team > 1 && more && (shared_b || block_done))
                FC_FN(team_barrier)(team);
        }
    }
}

/* ---- Entry point ------------------------------------------------------------------------------- */

/* C = beta * C for the degenerate cases (K == 0 or alpha == 0); beta == 0 writes zeros. */
static void FC_FN(scale_c)(fc_index M, fc_index N, real beta, real *C, fc_index ldc)
{
    for (fc_index i = 0; i < M; i++) {
        real *c_row = C + i * ldc;
        for (fc_index j = 0; j < N; j++)
            c_row[j] = beta == 0 ? (real)0 : beta * c_row[j];
    }
}

/* Threads worth waking for this call: 1 for small problems, and no more than there are tiles. */
static int FC_FN(gemm_threads)(const fc_ctx *ctx, fc_index M, fc_index N, fc_index K,
                               const fc_gemm_blocks *blocks)
{
    fc_index tiles = fc_gemm_ceil_div(M, blocks->mr) * fc_gemm_ceil_div(N, blocks->nr);
    fc_index threads = ctx->num_threads < 1 ? 1 : ctx->num_threads;

    if ((double)M * (double)N * (double)K < FC_GEMM_MIN_PARALLEL_FMAS)
        return 1;
    return (int)fc_gemm_min(threads, tiles);
}

int FC_FN(fc_gemm)(const fc_ctx *ctx, fc_index M, fc_index N, fc_index K, real alpha,
                   const real *A, fc_index rs_a, fc_index cs_a,
                   const real *B, fc_index rs_b, fc_index cs_b,
                   real beta, real *C, fc_index ldc)
{
    FC_FN(gemm_call) call;
    const fc_gemm_blocks *blocks;
    fc_index a_size, b_size;
    int threads;

    if (M <= 0 || N <= 0)
        return FC_OK;
    if (K <= 0 || alpha == 0) {
        FC_FN(scale_c)(M, N, beta, C, ldc);
        return FC_OK;
    }
    call = (FC_FN(gemm_call)){ .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                               .A = A, .rs_a = rs_a, .cs_a = cs_a, .B = B, .rs_b = rs_b,
                               .cs_b = cs_b, .C = C, .ldc = ldc,
                               .plan = FC_FN(fc_gemm_plan_for)(ctx->simd) };
    blocks = &call.plan.blocks;
    /* This call's blocks: the plan's, shrunk to the problem so small calls allocate little. */
    call.mc = fc_gemm_min(fc_gemm_round_down(blocks->mc, blocks->mr), fc_gemm_round_up(M, blocks->mr));
    call.kc = fc_gemm_min(blocks->kc, K);
    call.nc = fc_gemm_min(fc_gemm_round_down(blocks->nc, blocks->nr), fc_gemm_round_up(N, blocks->nr));
    threads = FC_FN(gemm_threads)(ctx, M, N, K, blocks);
    /* With A a few rows of micro-tiles, each element of a packed B panel would be read only that many
     * times: the packing copy costs more than it saves. Measured (1 thread, AVX2, GFLOP/s, packed vs
     * in place, tests/c/test_gemm.c `bench M N K 1`, best of 6): 6x784x25 29.7 vs 53.3, 16x100x150
     * 40.4 vs 45.9 (the im2col GEMMs of LeNet's two convolutions). With f32 AVX-512 up to one MC block
     * of A (64x256x288 90-101 -> 106-109, 50x121x225 78-79 -> 89-91; AVX2 lost on 144x512x512). A B of
     * exactly NR contiguous columns is already in the packed layout: 128x64x576, AVX-512, 1 thread,
     * 90.2 -> 95.1 GFLOP/s (mean of 3, same bench), and on 2 threads no serial copy of its one panel. */
    call.b_in_place = cs_b == 1 && (M <= blocks->in_place_b_rows || rs_b == blocks->nr);

    /* One allocation: the A blocks, then B's (none when every B panel is read in place). */
    a_size = fc_gemm_round_up((fc_index)threads * call.mc * call.kc, FC_GEMM_ALIGN / sizeof(real));
    call.b_packed = !call.b_in_place || (N % blocks->nr != 0 && call.plan.edge_ukernel == NULL);
    b_size = call.b_packed ? call.kc * call.nc : 0;
    call.a_packs = fc_gemm_alloc((size_t)(a_size + b_size) * sizeof(real));
    if (call.a_packs == NULL)
        return FC_ENOMEM;
    call.b_pack = call.a_packs + a_size;
    /* One thread runs without a parallel region: opening one, even of one thread, cost about 1 us
     * a call (6x64x1 took 1.3 us, 0.2 without; tests/c/test_gemm.c `bench 6 64 1 1`, AVX-512). */
    if (threads == 1) {
        FC_FN(gemm_thread)(&call, 0, 1);
    } else {
#pragma omp parallel num_threads(threads)
        FC_FN(gemm_thread)(&call, fc_thread_id(), fc_team_size());
    }

    free(call.a_packs);
    return FC_OK;
}

#undef gemm_plan
#undef gemm_ukernel

#endif /* FC_TEMPLATE_PASS */
