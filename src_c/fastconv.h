/*
 * fastconv.h -- the contract of every C kernel in src_c/.
 *
 * Conventions (they hold for every function below):
 *  - Layout is NCHW for activations, KCRS for weights (out-channels, in-channels, kernel h, kernel w),
 *    all buffers C-contiguous ("dense"), no aliasing between inputs and outputs (unless a kernel's
 *    contract allows it).
 *  - All sizes, strides and offsets are fc_index (int64_t); products are formed in 64 bits.
 *    The caller (the Cython binding) has already checked that every size is >= 1, that every product
 *    fits in int64, and that the output geometry is valid (out_h, out_w >= 1).
 *  - The CALLER allocates every input and output buffer. A kernel allocates only its own bounded
 *    scratch (a few MB at most, whatever the batch size) and frees it before returning.
 *  - Every kernel exists twice, with suffix _f32 (float) and _f64 (double); both are declared once
 *    here through FC_DECLARE_KERNELS. The sources are written once per concern and instantiated for
 *    both types by fc_template.h (see there).
 *  - Kernels never touch the Python API and hold no global mutable state: they are called with the
 *    GIL released and may run concurrently from several threads. Threads and SIMD level arrive in a
 *    const fc_ctx, never from a global.
 *  - Results are deterministic for a given (inputs, simd level): they do not depend on ctx->num_threads
 *    (work is split across threads, never reductions across a thread-dependent partition).
 *  - Return value: FC_OK, or an error code below; on error the output contents are unspecified.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t fc_index;

enum fc_status {
    FC_OK = 0,
    FC_ENOMEM = 1,   /* a scratch allocation failed */
    FC_EINDEX = 2,   /* max_pool2d_backward: an index outside [0, h*w) */
    FC_EINVAL = 3    /* an argument the binding should have rejected (defensive) */
};

/* SIMD level of the GEMM micro-kernels and vectorised loops, chosen at run time. */
typedef enum {
    FC_SIMD_SCALAR = 0,   /* portable C, any CPU */
    FC_SIMD_AVX2 = 1,     /* AVX2 + FMA */
    FC_SIMD_AVX512 = 2    /* AVX-512F */
} fc_simd_level;

/* Per-call execution context, filled by the binding. */
typedef struct {
    int num_threads;          /* >= 1: OpenMP threads for this call (num_threads clause) */
    fc_simd_level simd;       /* <= fc_simd_best(): the level to run */
} fc_ctx;

/* simd.c ------------------------------------------------------------------------------------ */
/* Best level this CPU supports (cpuid via __builtin_cpu_supports; SCALAR off x86-64). */
fc_simd_level fc_simd_best(void);
/* The level to use given a request string ("scalar" | "avx2" | "avx512" | NULL or "" for best).
 * Returns -1 for an unknown string; a known level above fc_simd_best() is capped to it. */
int fc_simd_resolve(const char *request);
const char *fc_simd_name(fc_simd_level level);
/* 1 if compiled with OpenMP, else 0. */
int fc_have_openmp(void);
int fc_max_threads(void);     /* omp_get_max_threads() or 1 */

/* threads.c ---------------------------------------------------------------------------------- */
/* The threads a kernel call gets when `requested` are asked for: `requested`, lowered to the cores
 * that other processes left free over the last tenth of a second (at least 1), while adaptive (the
 * default). Not thread-safe: the binding calls it with the GIL held. */
int fc_threads_for_call(int requested);
void fc_threads_set_adaptive(int enabled);
int fc_threads_adaptive(void);
/* The rule alone: round(cpus - others_busy) clamped to [1, cpus]; others_busy in cores. */
int fc_threads_free_cores(int cpus, double others_busy);

/* block_cache.c ----------------------------------------------------------------------------------
 * Memory for arrays (the binding makes it NumPy's allocator inside a training loop): blocks freed while
 * the cache is open are kept, bounded, for the next request of the same size. Unlike the kernels this
 * is shared state, guarded by its own lock; any thread may call these. A block from fc_cache_alloc /
 * calloc / realloc is freed with fc_cache_free, open or not; the functions return NULL when memory runs
 * out (or the size overflows), as malloc does. */
typedef struct {
    int open_count;        /* users that have opened it and not closed it yet */
    int kept_blocks;
    size_t kept_bytes;
    uint64_t hits, misses; /* requests of a size it keeps: served from a kept block, or not */
} fc_cache_stats;
void *fc_cache_alloc(size_t bytes);
void *fc_cache_calloc(size_t count, size_t size);
void *fc_cache_realloc(void *block, size_t bytes);
void fc_cache_free(void *block);
void fc_cache_open(void);
void fc_cache_close(void);    /* the last close frees every kept block */
fc_cache_stats fc_cache_get_stats(void);

/* Geometry of a 2-D convolution. out_h = (h + 2*pad_h - kernel_h) / stride_h + 1, same for w. */
typedef struct {
    fc_index batch, in_channels, in_h, in_w;
    fc_index out_channels, kernel_h, kernel_w;
    fc_index stride_h, stride_w, pad_h, pad_w;
    fc_index out_h, out_w;
} fc_conv_shape;

/* Which algorithm a convolution call asks for (the `algo` argument of fastconv.conv2d). */
typedef enum {
    FC_ALGO_AUTO = 0,     /* the faster of the two for this shape, dtype and SIMD level (conv_plan.c) */
    FC_ALGO_DIRECT = 1,   /* conv_direct.c */
    FC_ALGO_IM2COL = 2    /* conv_im2col.c */
} fc_conv_algo;

/* Element type of a call, for the functions that are not instantiated per type (the plan). */
typedef enum {
    FC_DTYPE_F32 = 0,
    FC_DTYPE_F64 = 1
} fc_dtype;

/* The kernels a convolution pass can run; fc_conv_kernel_name gives each its public name (the one
 * fastconv.conv2d_plan reports; documented there). */
typedef enum {
    FC_KERNEL_IM2COL_FUSED = 0,    /* forward: im2col written straight into the GEMM's packed panels */
    FC_KERNEL_IM2COL_BY_IMAGE,     /* grad_x: W^T dY and col2im one image at a time */
    FC_KERNEL_IM2COL_CHUNKED,      /* grad_x, grad_w: one GEMM per chunk of images side by side */
    FC_KERNEL_IM2COL_AS_FORWARD,   /* grad_x, stride 1: the fused forward of dY with W flipped and transposed */
    FC_KERNEL_IM2COL_IMPLICIT,     /* forward, stride_w 1-2: the micro-kernel reads the (copied) image itself */
    FC_KERNEL_DIRECT_GATHER,       /* forward, grad_x (stride 1): one output plane per task, portable C */
    FC_KERNEL_DIRECT_GATHER_SIMD,  /* the same with explicit vectors over output columns (stride_w 1) */
    FC_KERNEL_DIRECT_SCATTER,      /* grad_x, stride > 1: grad_y spread back over the input, portable */
    FC_KERNEL_DIRECT_DOT,          /* grad_w: one task per (k, c, r), dot products, portable C */
    FC_KERNEL_DIRECT_DOT_SIMD,     /* the same with explicit vectors over output columns (stride_w 1) */
    FC_KERNEL_DIRECT_KVEC,         /* forward vectorised over output channels */
    FC_KERNEL_DIRECT_KVGW,         /* grad_w vectorised over output channels */
    FC_KERNEL_DIRECT_WVEC,         /* forward / grad_x vectorised over output columns, channel blocks */
    FC_KERNEL_DIRECT_WROWS,        /* grad_x vectorised over output columns, blocks of output rows */
    FC_KERNEL_DIRECT_WVGW          /* grad_w (and grad_b) vectorised over output columns */
} fc_conv_kernel;

/* What one pass of a convolution runs: the kernel and the parameters it takes from the per-ISA rules
 * (conv_plan.h). Fields a kernel does not use are 0. */
typedef struct {
    fc_conv_kernel kernel;
    fc_simd_level simd;       /* the level it runs at (ctx->simd; scalar off x86-64) */
    fc_index lanes;           /* elements per vector at that level (0 at the portable level) */
    fc_index channel_vectors; /* kvec: vectors of output channels per block; kvgw: per task */
    fc_index kvgw_accumulators;  /* kvgw: accumulator vectors a task holds (its register budget) */
    fc_index wvgw_channels;   /* wvgw: output channels per task */
    fc_index images_per_chunk;   /* im2col.chunked: images per GEMM (bounded scratch) */
} fc_conv_plan;

/* Geometry of a 2-D pooling (planes = batch * channels). Padding never exceeds half the kernel
 * (checked by the binding), so every window holds at least one real input element. */
typedef struct {
    fc_index batch, channels, in_h, in_w;
    fc_index kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    fc_index out_h, out_w;
} fc_pool_shape;

/* conv_plan.c: the one place that picks a convolution kernel. One function per pass returns what
 * `algo` runs for this shape, element type and ctx->simd: the drivers (fc_conv2d_*_direct,
 * fc_conv2d_*_im2col) run the FC_ALGO_DIRECT / FC_ALGO_IM2COL plans, fc_conv2d_forward and
 * fc_conv2d_backward the FC_ALGO_AUTO one, and the binding reports it. Independent of
 * ctx->num_threads, so the results are too. The shape is valid (the binding checked it; batch may be 0,
 * where nothing runs). grad_b is computed by the kernel of grad_w's plan. */
fc_conv_plan fc_conv_plan_forward(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype);
fc_conv_plan fc_conv_plan_grad_x(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype);
fc_conv_plan fc_conv_plan_grad_w(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype);
/* "direct.kvec", "im2col.fused", ...: the stable public name of a kernel ("unknown" for no kernel). */
const char *fc_conv_kernel_name(fc_conv_kernel kernel);
/* 1 if the kernel is one of conv_direct.c's (run by fc_conv2d_*_direct), 0 if one of conv_im2col.c's. */
int fc_conv_kernel_is_direct(fc_conv_kernel kernel);

/* One block of an inference chain (conv_chain.c): a convolution, optionally a ReLU on its output, optionally
 * a max pool after that (values only). The batch fields of both shapes are ignored (the chain's call gives
 * the batch); pool's channels, in_h, in_w are the convolution's out_channels, out_h, out_w. weight and bias
 * point to `real` of the call's type (bias may be NULL). */
typedef struct {
    fc_conv_shape conv;
    fc_conv_algo algo;
    const void *weight, *bias;
    int relu;                 /* 1: max(y, 0) on the convolution's output, as fc_relu_forward */
    int pool;                 /* 1: then max pooling with pool_shape */
    fc_pool_shape pool_shape;
} fc_conv_block;

/* The settings of one optimizer step (optim.c), as fastconv.optim holds them. Every rule first adds
 * weight_decay * param to the gradient g (when weight_decay is not 0). SGD: b = momentum * b + g; param -= lr * (nesterov ? g +
 * momentum * b : b) (lr * g without momentum). Adam: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2)
 * g^2, param -= step_size * m / (sqrt(v / bias_correction2) + eps), where the caller sets step_size =
 * lr / (1 - beta1^t) and bias_correction2 = 1 - beta2^t for step t. RMSprop: s = alpha s + (1 - alpha)
 * g^2, d = g / (sqrt(s) + eps), with momentum b = momentum * b + d and d = b; param -= lr * d. */
typedef struct { double lr, weight_decay, momentum; int nesterov; } fc_sgd_rule;
typedef struct { double weight_decay, beta1, beta2, eps, step_size, bias_correction2; } fc_adam_rule;
typedef struct { double lr, weight_decay, alpha, eps, momentum; } fc_rmsprop_rule;

#define FC_DECLARE_KERNELS(real, sfx)                                                            \
/* gemm.c: C = alpha * op(A) op(B) + beta * C, BLIS-style.                                     \
 * A is M x K with element (i, p) at A[i*rs_a + p*cs_a]; B is K x N with (p, j) at              \
 * B[p*rs_b + j*cs_b] (general strides make transposes free); C is M x N row-major, element     \
 * (i, j) at C[i*ldc + j]. beta == 0 means C is write-only (not read, may hold NaN).            \
 * Threads split macro-tiles of C (never K), so the result does not depend on num_threads.      \
 * Scratch: packed panels of bounded size, allocated per call. */                              \
int fc_gemm_##sfx(const fc_ctx *ctx, fc_index M, fc_index N, fc_index K, real alpha,            \
                  const real *A, fc_index rs_a, fc_index cs_a,                                  \
                  const real *B, fc_index rs_b, fc_index cs_b,                                  \
                  real beta, real *C, fc_index ldc);                                            \
                                                                                                \
/* im2col.c: one image. x: (C, H, W). col: (C*R*S, out_h*out_w) row-major, row index            \
 * (c*R + r)*S + s, column index oh*out_w + ow; padded positions read as zero.                  \
 * col2im ADDS col back into x (caller zeroes x first when it wants a plain col2im). Serial:    \
 * callers parallelise over images or channels. */                                             \
void fc_im2col_##sfx(const fc_conv_shape *shape, const real *x, real *col);                     \
void fc_col2im_##sfx(const fc_conv_shape *shape, const real *col, real *x);                     \
                                                                                                \
/* conv_im2col.c / conv_direct.c: forward, with that family's plan. x (N,C,H,W),                \
 * weight (K,C,R,S), bias (K) or NULL, y (N,K,out_h,out_w) written (not accumulated). */        \
int fc_conv2d_forward_im2col_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape,               \
                                   const real *x, const real *weight, const real *bias,          \
                                   real *y);                                                     \
int fc_conv2d_forward_direct_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape,               \
                                   const real *x, const real *weight, const real *bias,          \
                                   real *y);                                                     \
/* Backward. grad_y (N,K,out_h,out_w). Any of grad_x (N,C,H,W), grad_w (K,C,R,S),               \
 * grad_b (K) may be NULL (not computed); the others are written (not accumulated). */          \
int fc_conv2d_backward_im2col_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape,              \
                                    const real *grad_y, const real *x, const real *weight,       \
                                    real *grad_x, real *grad_w, real *grad_b);                   \
int fc_conv2d_backward_direct_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape,              \
                                    const real *grad_y, const real *x, const real *weight,       \
                                    real *grad_x, real *grad_w, real *grad_b);                   \
/* conv2d.c: the pass's plan for `algo` (fc_conv_plan_*), run by the driver of its kernel's     \
 * family. The backward runs grad_w and grad_b in one call and grad_x in another when their     \
 * plans are of different families, else all three in one. */                                   \
int fc_conv2d_forward_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo,   \
                            const real *x, const real *weight, const real *bias, real *y);      \
int fc_conv2d_backward_##sfx(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo,  \
                             const real *grad_y, const real *x, const real *weight,             \
                             real *grad_x, real *grad_w, real *grad_b);                         \
                                                                                                \
/* pool.c. x (N,C,H,W); y and indices (N,C,out_h,out_w). Max pool: padding acts as -inf, NaN    \
 * propagates (a NaN is the max), ties go to the first element in row-major window order;       \
 * indices[...] = h*in_w + w inside the (in_h, in_w) plane, as PyTorch. Average pool: the sum   \
 * over the window divided by kernel_h*kernel_w (padding counts, count_include_pad=True).       \
 * Backward kernels write all of grad_x (zeroing it first). max backward returns FC_EINDEX if   \
 * any index is outside [0, in_h*in_w). */                                                      \
int fc_max_pool2d_forward_##sfx(const fc_ctx *ctx, const fc_pool_shape *shape,                  \
                                const real *x, real *y, int64_t *indices);                      \
int fc_max_pool2d_backward_##sfx(const fc_ctx *ctx, const fc_pool_shape *shape,                 \
                                 const real *grad_y, const int64_t *indices, real *grad_x);     \
/* pool.c, for inference: max pooling's y alone (no indices), equal to fc_max_pool2d_forward's; with  \
 * relu, each input is first replaced by max(x, 0) as fc_relu_forward computes it. */                 \
int fc_max_pool2d_values_##sfx(const fc_ctx *ctx, const fc_pool_shape *shape,                   \
                               const real *x, real *y, int relu);                               \
/* conv_chain.c, for inference: x (batch, C, H, W) through `count` blocks (the output of one is the \
 * input of the next) into y, each image computed as the blocks' layers compute it one by one      \
 * (the same kernels, so the same bits), groups of images carried through every block in turn by   \
 * one thread while they are in cache. Blocks valid and chained (the binding checked). */          \
int fc_conv_chain_forward_##sfx(const fc_ctx *ctx, fc_index batch, int count,                    \
                                const fc_conv_block *blocks, const real *x, real *y);           \
int fc_avg_pool2d_forward_##sfx(const fc_ctx *ctx, const fc_pool_shape *shape,                  \
                                const real *x, real *y);                                        \
int fc_avg_pool2d_backward_##sfx(const fc_ctx *ctx, const fc_pool_shape *shape,                 \
                                 const real *grad_y, real *grad_x);                             \
                                                                                                \
/* activation.c. count elements, dense. relu_forward: y = max(x, 0) (NaN stays NaN; y may be x). \
 * relu_backward: grad_x = grad_y where y > 0, else 0 (y is the forward's output; grad_x may be  \
 * grad_y). */                                                                                  \
int fc_relu_forward_##sfx(const fc_ctx *ctx, fc_index count, const real *x, real *y);           \
int fc_relu_backward_##sfx(const fc_ctx *ctx, fc_index count, const real *grad_y, const real *y, \
                           real *grad_x);                                                       \
                                                                                                \
/* optim.c. One step of a rule on count dense elements, in place on param and the state arrays;  \
 * grad is read only. A NULL buffer means no momentum (FC_EINVAL if rule->momentum is not 0). */ \
int fc_sgd_step_##sfx(const fc_ctx *ctx, const fc_sgd_rule *rule, fc_index count, real *param,  \
                      const real *grad, real *buffer);                                          \
int fc_adam_step_##sfx(const fc_ctx *ctx, const fc_adam_rule *rule, fc_index count, real *param, \
                       const real *grad, real *m, real *v);                                     \
int fc_rmsprop_step_##sfx(const fc_ctx *ctx, const fc_rmsprop_rule *rule, fc_index count,       \
                          real *param, const real *grad, real *square_avg, real *buffer);

FC_DECLARE_KERNELS(float, f32)
FC_DECLARE_KERNELS(double, f64)

#endif /* FASTCONV_H */
