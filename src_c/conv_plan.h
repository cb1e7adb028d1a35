/*
 * conv_plan.h -- every rule that picks a convolution kernel, and the kernel sizes those rules read.
 *
 * conv_plan.c turns these into one plan per pass (fc_conv_plan_forward / _grad_x / _grad_w, declared
 * in fastconv.h); the kernels include this header for the same sizes, so a rule and the kernel it
 * admits cannot disagree. As gemm_config.h holds the GEMM's blocking, this holds:
 *   - the per-ISA table (FC_PLAN_*_AVX2, FC_PLAN_*_AVX512): register budgets of the vector kernels and
 *     the bounds of algo="auto", measured per level;
 *   - the limits of each direct kernel (widest kernel, largest scratch it copies);
 *   - the scratch budgets of im2col's backward;
 *   - the geometry helpers (scratch sizes, padded channel counts) that a rule and a driver both need.
 * Nothing here depends on the thread count: a plan, and so a result, never does.
 */
#ifndef FASTCONV_CONV_PLAN_H
#define FASTCONV_CONV_PLAN_H

#include "fastconv.h"

/* ---- algo="auto": direct or im2col + GEMM ---------------------------------------------------------
 * Direct whenever the reduction per output element, C*R*S, is at most FC_PLAN_DIRECT_MAX_REDUCTION
 * (im2col + GEMM pays for its column buffer and wins once the GEMM's depth lets the micro-kernel run at
 * full speed; measured with `fastconv bench`, 2 threads, float32: LeNet-5's first layer, C*R*S 25, runs
 * direct), and wherever a direct kernel vectorised over channels or columns applies (kvec, wvec, wrows,
 * kvgw, wvgw), within the level's bounds below. */
#define FC_PLAN_DIRECT_MAX_REDUCTION 64

/* The forward's bound per level: kvec / wvec up to FC_PLAN_AUTO_MAX_VECTORS_* vectors of output channels
 * (8 or 16 floats each), or up to FC_PLAN_AUTO_SMALL_REDUCTION_MAX_VECTORS_* when C*R*S is at most
 * FC_PLAN_AUTO_SMALL_REDUCTION; im2col + GEMM above, where the GEMM's register blocking beats the direct
 * loops. Both levels were measured with `python bench/forward_k_sweep.py` (figures: docs/performance.md,
 * "The auto rules"). */
#define FC_PLAN_AUTO_MAX_VECTORS_AVX2 4
#define FC_PLAN_AUTO_SMALL_REDUCTION_MAX_VECTORS_AVX2 8
#define FC_PLAN_AUTO_MAX_VECTORS_AVX512 3
#define FC_PLAN_AUTO_SMALL_REDUCTION_MAX_VECTORS_AVX512 3
#define FC_PLAN_AUTO_SMALL_REDUCTION 225

/* ---- register budgets of the vector kernels, per level ------------------------------------------- */

/* kvec: vectors of output channels per register block. AVX2 (16 registers): 2 vectors x 1 row x 6
 * columns, so that each input broadcast feeds two FMAs -- with one vector (1 x 12) each FMA needs a
 * broadcast of its own, and the kernel ran at about half the FMA peak (measured, 2 threads, AVX2, ms:
 * LeNet C3 0.28 -> 0.245, seed000-c2 3.3 -> 2.3, strided 3.4 -> 2.3, seed002-c4 6.3 -> 5.0, vgg-ish 55 ->
 * 37). AVX-512 (32 registers): 1 vector x 2 rows x 12 columns. */
#define FC_PLAN_KVEC_CHANNEL_VECTORS_AVX2 2
#define FC_PLAN_KVEC_CHANNEL_VECTORS_AVX512 1
#define FC_PLAN_KVEC_ROWS_AVX2 1
#define FC_PLAN_KVEC_ROWS_AVX512 2

/* kvgw: accumulator vectors of one task (AVX-512 has 32 vector registers: 25 + the dy vector; AVX2 16:
 * 12 + dy + one broadcast). On AVX2 a task holds two vectors of channels when two sets of its taps fit
 * (each input broadcast then feeds two FMAs, as in the forward), else one. Measured (2 threads, AVX2,
 * ms): lenet-c3 0.26 -> 0.21, seed002-c4 4.3 -> 4.0, vgg-ish 31 -> 30, strided 2.26 -> 2.2; but
 * seed000-c2 (K 50: the last group holds one real vector and the row blocks are sized for two) 2.25 ->
 * 2.4. */
#define FC_PLAN_KVGW_ACCUMULATORS_AVX2 12
#define FC_PLAN_KVGW_ACCUMULATORS_AVX512 25
#define FC_PLAN_KVGW_CHANNEL_VECTORS_AVX2 2
#define FC_PLAN_KVGW_CHANNEL_VECTORS_AVX512 1

/* wvgw: vector registers a task may fill with kb x (kernel_w + 1) vectors (kb x kernel_w accumulators,
 * kb dy vectors): 16 AVX2 registers hold 2 x 5 accumulators + 2 dy + 2 x loads + 2 shuffled for
 * LeNet's 5x5. */
#define FC_PLAN_WVGW_REGISTERS_AVX2 15
#define FC_PLAN_WVGW_REGISTERS_AVX512 31

/* ---- limits of the direct kernels ----------------------------------------------------------------- */

/* Widest kernel the SIMD gather handles (its per-column masks live on the stack); wider: portable. */
#define FC_DIRECT_GATHER_SIMD_MAX_KW 32
/* Widest kernel whose SIMD dot-product task keeps all kernel_w taps in registers; wider: portable. */
#define FC_DIRECT_DOT_SIMD_MAX_KW 8
/* Largest image (bytes) the kvec and wvec kernels copy per thread (padded, or row-padded with slack);
 * larger images take the gather (keeps the scratch bounded, and such planes are wide enough for the
 * row-vectorised gather). */
#define FC_DIRECT_IMAGE_COPY_MAX_BYTES (1 << 20)

/* wvec: a block is FC_WVEC_CHANNELS output channels x FC_WVEC_VECTORS vectors of output columns
 * (6 x 2 = 12 AVX2 accumulators). */
#define FC_WVEC_CHANNELS 6
#define FC_WVEC_VECTORS 2
/* wrows: blocks of FC_WROWS_ROWS output rows x FC_WROWS_VECTORS vectors of one channel (12
 * accumulators: enough independent FMA chains for AVX2's latency x throughput; + 3 weights + 1 input
 * vector = 16 registers). */
#define FC_WROWS_ROWS 3
#define FC_WROWS_VECTORS 4

/* kvgw: a task holds at most FC_KVGW_MAX_ROWS kernel rows x FC_KVGW_MAX_KW taps (wider kernels: the dot
 * tasks). The kernel applies only when one image's copies (dy transposed, x with its border) fit
 * FC_KVGW_SCRATCH_BYTES, so that a thread's, however few threads share the tasks, stay bounded. */
#define FC_KVGW_MAX_ROWS 7
#define FC_KVGW_MAX_KW 7
#define FC_KVGW_SCRATCH_BYTES ((fc_index)2 << 20)
/* kvgw: each thread's own copies (its channels of dy transposed, its channels of x with the border), in
 * chunks of images that fit this (at least one image): about half a core's L2 on the machines measured. */
#define FC_KVGW_THREAD_SCRATCH_BYTES ((fc_index)512 << 10)

/* wvgw: at most FC_WVGW_MAX_CHANNELS output channels x FC_WVGW_MAX_KW taps per task; images summed in
 * chunks of FC_WVGW_CHUNK (fewer if one pass of the bounded x copy holds fewer), whose partial sums are
 * added in chunk order: the thread count never changes the order. */
#define FC_WVGW_MAX_CHANNELS 4
#define FC_WVGW_MAX_KW 7
#define FC_WVGW_CHUNK 8
#define FC_WVGW_SCRATCH_BYTES ((fc_index)2 << 20)

/* ---- im2col + GEMM's backward -------------------------------------------------------------------- */

/* Scratch budget of one call: the column buffer plus the (K x count*P) output / dY buffer. */
#define FC_IM2COL_SCRATCH_BYTES ((fc_index)4 << 20)
/* grad_x image by image when an image's column matrix is small (two or more fit the budget) and the
 * GEMM's depth, out_channels, is at most this. Measured (2 threads, float32, AVX-512, ms, by image vs
 * chunked): lenet-c3 (K 16) 0.52 vs 0.74 inside a training step; seed000-c2 (K 50) 1.96 vs 2.66; strided
 * (K 64) 1.72 vs 2.32; seed002-c4 (K 128) 3.5 vs 2.2 while W^T was packed again for every image (as
 * large as that image's GEMM is long), 3.43 vs 5.39 (2 threads, quiet) and 6.6-6.9 vs 7.1-7.6 (1 thread,
 * CPU time) once packed once per call. Larger K is not measured. */
#define FC_IM2COL_BY_IMAGE_MAX_K 128
/* grad_x image by image also when the budget holds only one image (the chunked form then runs one GEMM
 * per image as well, but with a barrier after each), given at least this many images to share out. */
#define FC_IM2COL_BY_IMAGE_MIN_BATCH 8

/* grad_x as a forward (im2col.as_forward, stride 1): the fused forward of dY with W flipped and transposed,
 * whose GEMM has depth K*R*S and only C rows (the input channels), and no column matrix to add back. Its
 * panel packing is shared by C / MR micro-tiles where by_image's col2im costs about one add per K
 * multiply-adds, so it wins where K is at most FC_PLAN_AS_FORWARD_MAX_K_PER_C_* x C and the input plane
 * holds at least FC_PLAN_AS_FORWARD_MIN_PLANE_* pixels (0: never at that level). Measured per level with
 * grad_x alone, 1 thread, CPU time, and the backward at 2 threads (figures: docs/performance.md,
 * "grad_x as a forward"): AVX-512 wins with K = C (0.80-0.92 of by_image's time) and K = 2C on planes of
 * 28 x 28 and more (vgg-ish 0.95), loses with K = 2C on 16 x 16 (1.03-1.07) and K = 4C (1.18); AVX2's
 * narrower panels win only with K = C (0.90-0.92; vgg-ish 1.07). */
#define FC_PLAN_AS_FORWARD_MAX_K_PER_C_AVX2 1
#define FC_PLAN_AS_FORWARD_MIN_PLANE_AVX2 256
#define FC_PLAN_AS_FORWARD_MAX_K_PER_C_AVX512 2
#define FC_PLAN_AS_FORWARD_MIN_PLANE_AVX512 784

/* im2col.implicit (forward, stride_w 2 or 1): the fused forward without B panels. Its image copy (split
 * into even and odd columns at stride_w 2, just padded at stride_w 1, none without padding) holds every
 * row of a panel as contiguous runs, so where each output row is whole vectors (out_w a multiple of the
 * lanes) the indirect micro-kernel reads those runs in place: no panel to build (9% of the strided
 * forward's time at 1 thread, AVX-512; 6% of vgg-ish's backward) and no panel to re-read. Where an output
 * row is half a vector (seed002-c4's out_w 8 in float), it reads each vector as two rows' halves.
 * 1 at the levels with that micro-kernel (gemm_kernels.c: AVX2's 16-column panels stay in L1, and an
 * indirect AVX2 tile did not pay); measured figures: docs/performance.md, "Implicit GEMM". */
#define FC_PLAN_IMPLICIT_FORWARD_AVX2 0
#define FC_PLAN_IMPLICIT_FORWARD_AVX512 1

/* ---- geometry a rule and a driver both need --------------------------------------------------------- */

/* Widest vector of any level, in elements of `elem_bytes`: the slack past a row's end that a vector
 * kernel's last loads may reach. */
static inline fc_index fc_plan_max_lanes(fc_index elem_bytes)
{
    return 64 / elem_bytes;
}

/* Elements of one row-padded image for wvec / wrows: `channels` x `rows` rows of in_w + 2*pad_w, then
 * slack for the lanes past out_w (a block's loads end at most FC_WVEC_VECTORS vectors past a row's end). */
static inline fc_index fc_wvec_image_elements(fc_index channels, fc_index rows, fc_index in_w, fc_index pad_w,
                                              fc_index elem_bytes)
{
    return channels * rows * (in_w + 2 * pad_w) + FC_WVEC_VECTORS * fc_plan_max_lanes(elem_bytes);
}

/* out_channels rounded up to whole groups of `group` channels (zero lanes past K). */
static inline fc_index fc_plan_round_up(fc_index count, fc_index group)
{
    return (count + group - 1) / group * group;
}

/* kvgw scratch elements per image: dy transposed (out_h*out_w x k_pad), plus x with its border if padded. */
static inline fc_index fc_kvgw_image_elements(const fc_conv_shape *sh, fc_index k_pad)
{
    const int padded = sh->pad_h > 0 || sh->pad_w > 0;
    const fc_index padded_image = sh->in_channels * (sh->in_h + 2 * sh->pad_h) * (sh->in_w + 2 * sh->pad_w);
    return sh->out_h * sh->out_w * k_pad + (padded ? padded_image : 0);
}

/* Row length of wvgw's x copy: the padded row, or more to hold what a row's last vector of output
 * columns reads (the shifted loads of kernel_w taps: (kernel_w - 1) / lanes + 2 vectors from its first
 * column), so it stays in its row. */
static inline fc_index fc_wvgw_row_step(const fc_conv_shape *sh, fc_index lanes)
{
    const fc_index read = ((sh->out_w + lanes - 1) / lanes + (sh->kernel_w - 1) / lanes + 1) * lanes;
    const fc_index padded_w = sh->in_w + 2 * sh->pad_w;
    return padded_w > read ? padded_w : read;
}

#endif /* FASTCONV_CONV_PLAN_H */
