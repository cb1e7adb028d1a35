/*
 * conv_plan.c -- the one place that picks a convolution kernel (contract: fastconv.h; rules and
 * measurements: conv_plan.h).
 *
 * For each pass (forward, grad_x, grad_w) the direct plan is the best direct kernel that applies (the
 * vectorised ones first, then the gather / scatter / dot fallbacks), the im2col plan is fixed but for
 * grad_x's choice of by-image, chunked or as-forward, and algo="auto" takes the direct plan where it is
 * measured faster (a vectorised kernel within the level's bounds, or a short reduction C*R*S), else the
 * im2col one.
 */
#include "conv_plan.h"
#include "simd_targets.h"

/* The per-level rules of conv_plan.h as one row per fc_simd_level. */
typedef struct {
    fc_index vector_bytes;               /* 0: no explicit vector kernels at this level */
    fc_index kvec_channel_vectors;
    fc_index kvgw_accumulators, kvgw_channel_vectors;
    fc_index wvgw_registers;
    fc_index auto_max_vectors, auto_small_reduction_max_vectors;   /* 0: no bound */
    fc_index as_forward_max_k_per_c, as_forward_min_plane;        /* 0: no im2col.as_forward */
    int implicit_forward;                                          /* 0: no im2col.implicit */
} fc_plan_isa;

static const fc_plan_isa fc_plan_table[] = {
    [FC_SIMD_SCALAR] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [FC_SIMD_AVX2] = { 32, FC_PLAN_KVEC_CHANNEL_VECTORS_AVX2, FC_PLAN_KVGW_ACCUMULATORS_AVX2,
                       FC_PLAN_KVGW_CHANNEL_VECTORS_AVX2, FC_PLAN_WVGW_REGISTERS_AVX2,
                       FC_PLAN_AUTO_MAX_VECTORS_AVX2, FC_PLAN_AUTO_SMALL_REDUCTION_MAX_VECTORS_AVX2,
                       FC_PLAN_AS_FORWARD_MAX_K_PER_C_AVX2, FC_PLAN_AS_FORWARD_MIN_PLANE_AVX2,
                       FC_PLAN_IMPLICIT_FORWARD_AVX2 },
    [FC_SIMD_AVX512] = { 64, FC_PLAN_KVEC_CHANNEL_VECTORS_AVX512, FC_PLAN_KVGW_ACCUMULATORS_AVX512,
                         FC_PLAN_KVGW_CHANNEL_VECTORS_AVX512, FC_PLAN_WVGW_REGISTERS_AVX512,
                         FC_PLAN_AUTO_MAX_VECTORS_AVX512, FC_PLAN_AUTO_SMALL_REDUCTION_MAX_VECTORS_AVX512,
                         FC_PLAN_AS_FORWARD_MAX_K_PER_C_AVX512, FC_PLAN_AS_FORWARD_MIN_PLANE_AVX512,
                         FC_PLAN_IMPLICIT_FORWARD_AVX512 },
};

static const char *const fc_kernel_names[] = {
    [FC_KERNEL_IM2COL_FUSED] = "im2col.fused",
    [FC_KERNEL_IM2COL_BY_IMAGE] = "im2col.by_image",
    [FC_KERNEL_IM2COL_CHUNKED] = "im2col.chunked",
    [FC_KERNEL_IM2COL_AS_FORWARD] = "im2col.as_forward",
    [FC_KERNEL_IM2COL_IMPLICIT] = "im2col.implicit",
    [FC_KERNEL_DIRECT_GATHER] = "direct.gather",
    [FC_KERNEL_DIRECT_GATHER_SIMD] = "direct.gather_simd",
    [FC_KERNEL_DIRECT_SCATTER] = "direct.scatter",
    [FC_KERNEL_DIRECT_DOT] = "direct.dot",
    [FC_KERNEL_DIRECT_DOT_SIMD] = "direct.dot_simd",
    [FC_KERNEL_DIRECT_KVEC] = "direct.kvec",
    [FC_KERNEL_DIRECT_KVGW] = "direct.kvgw",
    [FC_KERNEL_DIRECT_WVEC] = "direct.wvec",
    [FC_KERNEL_DIRECT_WROWS] = "direct.wrows",
    [FC_KERNEL_DIRECT_WVGW] = "direct.wvgw",
};

const char *fc_conv_kernel_name(fc_conv_kernel kernel)
{
    const int count = (int)(sizeof fc_kernel_names / sizeof fc_kernel_names[0]);
    return (int)kernel >= 0 && (int)kernel < count ? fc_kernel_names[kernel] : "unknown";
}

int fc_conv_kernel_is_direct(fc_conv_kernel kernel)
{
    return kernel >= FC_KERNEL_DIRECT_GATHER;
}

static fc_index fc_plan_elem_bytes(fc_dtype dtype)
{
    return dtype == FC_DTYPE_F32 ? 4 : 8;
}

/* A plan for `kernel` at ctx's level (scalar where this build has no vector kernels), lanes filled. */
static fc_conv_plan fc_plan_make(const fc_ctx *ctx, fc_dtype dtype, fc_conv_kernel kernel)
{
    fc_conv_plan plan = { kernel, FC_HAVE_X86 ? ctx->simd : FC_SIMD_SCALAR, 0, 0, 0, 0, 0 };
    plan.lanes = fc_plan_table[plan.simd].vector_bytes / fc_plan_elem_bytes(dtype);
    return plan;
}

/* The same plan one level down (AVX-512 -> AVX2): half the lanes. */
static fc_conv_plan fc_plan_narrower(fc_conv_plan plan, fc_dtype dtype)
{
    plan.simd = plan.simd == FC_SIMD_AVX512 ? FC_SIMD_AVX2 : FC_SIMD_SCALAR;
    plan.lanes = fc_plan_table[plan.simd].vector_bytes / fc_plan_elem_bytes(dtype);
    return plan;
}

static int fc_plan_image_copy_fits(fc_index elements, fc_dtype dtype)
{
    return elements <= FC_DIRECT_IMAGE_COPY_MAX_BYTES / fc_plan_elem_bytes(dtype);
}

/* ---- the direct kernels' rules ----------------------------------------------------------------------- */

/* kvec: any stride, enough output channels to fill three quarters of a vector (the lanes past
 * out_channels compute zeros; LeNet's first layer, K 6 in 8 AVX2 lanes, gains: forward 0.36 -> 0.32
 * ms, 2 threads), a batch of two or more (it parallelises over images; a single image keeps the
 * gather's plane parallelism: the rule must not depend on the thread count, so results do not either)
 * and a padded image small enough to copy. Measured faster than the gather on every such LeNet/VGG
 * shape, 56-wide planes included, and than im2col on the strided benchmark shape (1.7 vs 2.3 ms). */
static int fc_kvec_applies(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype)
{
    const fc_index padded_image = sh->in_channels * (sh->in_h + 2 * sh->pad_h) * (sh->in_w + 2 * sh->pad_w);
    return lanes > 0 && 4 * sh->out_channels >= 3 * lanes && sh->batch >= 2
        && fc_plan_image_copy_fits(padded_image, dtype);
}

/* wvec forward: stride_w 1, half a block to one block of output channels (more take kvec, which fills
 * its vectors then; fewer waste the block), rows at least one vector wide, a batch of two or more (it
 * parallelises over images, like kvec) and a bounded image copy. Measured (2 threads, AVX2, ms):
 * LeNet's first layer (K 6) 0.335 with kvec, 0.15-0.19. */
static int fc_wvec_forward_applies(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype)
{
    return lanes > 0 && sh->stride_w == 1 && sh->out_channels <= FC_WVEC_CHANNELS
        && 2 * sh->out_channels >= FC_WVEC_CHANNELS && sh->out_w >= lanes && sh->batch >= 2
        && fc_plan_image_copy_fits(fc_wvec_image_elements(sh->in_channels, sh->in_h, sh->in_w, sh->pad_w,
                                                          fc_plan_elem_bytes(dtype)), dtype);
}

/* What grad_x needs to run as a forward convolution (wvec or wrows): stride 1, padding at most
 * kernel - 1 (conv(dY, W flipped and transposed, padding kernel - 1 - pad)), input rows at least one
 * vector wide, a batch of two or more, and a bounded copy of one dY image with `padded_h` rows per
 * channel. */
static int fc_grad_x_as_forward_ok(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype, fc_index padded_h)
{
    return lanes > 0 && sh->stride_h == 1 && sh->stride_w == 1
        && sh->pad_h <= sh->kernel_h - 1 && sh->pad_w <= sh->kernel_w - 1
        && sh->in_w >= lanes && sh->batch >= 2
        && fc_plan_image_copy_fits(fc_wvec_image_elements(sh->out_channels, padded_h, sh->out_w,
                                                          sh->kernel_w - 1 - sh->pad_w, fc_plan_elem_bytes(dtype)),
                                   dtype);
}

/* grad_x as a wvec forward, whose output channels are the layer's input channels: half a block to two
 * blocks of them. Measured (2 threads, AVX2, ms): LeNet's C3 (C 6) 0.28, against 0.56 with im2col and
 * 0.92 with the gather; its C1 (C 1) 0.56 against the gather's 0.25, hence the lower bound. */
static int fc_wvec_grad_x_applies(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype)
{
    return sh->in_channels <= 2 * FC_WVEC_CHANNELS && 2 * sh->in_channels >= FC_WVEC_CHANNELS
        && fc_grad_x_as_forward_ok(sh, lanes, dtype, sh->out_h);
}

/* grad_x as a forward with wrows: for the one or two input channels too few for wvec's channel blocks
 * (its dY copy holds the vertical padding rows too). Measured (2 threads, AVX2, ms): LeNet's C1 (C 1)
 * 0.265 with the gather, 0.15 with wrows. */
static int fc_wrows_grad_x_applies(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype)
{
    return 2 * sh->in_channels < FC_WVEC_CHANNELS
        && fc_grad_x_as_forward_ok(sh, lanes, dtype, sh->out_h + 2 * (sh->kernel_h - 1 - sh->pad_h));
}

/* kvgw's channel vectors per task: two where the level allows it and two sets of kernel_w accumulators
 * fit its budget, else one. */
static fc_index fc_kvgw_channel_vectors(const fc_conv_shape *sh, const fc_plan_isa *isa)
{
    return isa->kvgw_channel_vectors == 2 && 2 * sh->kernel_w <= isa->kvgw_accumulators ? 2 : 1;
}

/* kvgw: any stride, at least one full vector of output channels (with LeNet's K 6 in 8 AVX2 lanes,
 * kvgw took 0.32 ms against the dot tasks' 0.27: unlike the forward), kernel_w <= FC_KVGW_MAX_KW, and
 * one image's scratch within the budget. */
static int fc_kvgw_applies(const fc_conv_shape *sh, const fc_conv_plan *plan, fc_dtype dtype)
{
    if (plan->lanes == 0 || sh->out_channels < plan->lanes || sh->kernel_w > FC_KVGW_MAX_KW)
        return 0;
    const fc_index k_pad = fc_plan_round_up(sh->out_channels, plan->lanes * plan->channel_vectors);
    return fc_kvgw_image_elements(sh, k_pad) <= FC_KVGW_SCRATCH_BYTES / fc_plan_elem_bytes(dtype);
}

/* wvgw's output channels per task: as many as the level's registers hold, at most FC_WVGW_MAX_CHANNELS. */
static fc_index fc_wvgw_channels(const fc_conv_shape *sh, const fc_plan_isa *isa)
{
    const fc_index kb = isa->wvgw_registers / (sh->kernel_w + 1);
    return kb > FC_WVGW_MAX_CHANNELS ? FC_WVGW_MAX_CHANNELS : (kb < 1 ? 1 : kb);
}

/* wvgw: where kvgw does not apply for lack of output channels (fewer than one vector), stride_w 1, rows
 * at least one vector wide, kernel_w <= FC_WVGW_MAX_KW and one image's x copy within the budget.
 * Measured (2 threads, AVX2, ms): LeNet's C1 (K 6) 0.29 with the dot tasks, 0.14 with wvgw. */
static int fc_wvgw_applies(const fc_conv_shape *sh, fc_index lanes, fc_dtype dtype)
{
    return lanes > 0 && sh->out_channels < lanes && sh->stride_w == 1 && sh->out_w >= lanes
        && sh->kernel_w <= FC_WVGW_MAX_KW
        && sh->in_channels * sh->in_h * fc_wvgw_row_step(sh, lanes)
               <= FC_WVGW_SCRATCH_BYTES / fc_plan_elem_bytes(dtype);
}

/* ---- the plans of each family -------------------------------------------------------------------- */

/* The wvec / wrows kernels need rows at least one vector wide: where a row is narrower than an
 * AVX-512 vector, they run with AVX2's (LeNet's C3 grad_x, rows of 14: see fc_wvec_grad_x_applies). */
static fc_conv_plan fc_plan_direct_forward(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_make(ctx, dtype, FC_KERNEL_DIRECT_WVEC);
    for (fc_conv_plan level = plan; level.lanes > 0; level = fc_plan_narrower(level, dtype))
        if (fc_wvec_forward_applies(sh, level.lanes, dtype))
            return level;
    if (fc_kvec_applies(sh, plan.lanes, dtype)) {
        plan.kernel = FC_KERNEL_DIRECT_KVEC;
        plan.channel_vectors = fc_plan_table[plan.simd].kvec_channel_vectors;
        return plan;
    }
    plan.kernel = plan.lanes > 0 && sh->stride_w == 1 && sh->kernel_w <= FC_DIRECT_GATHER_SIMD_MAX_KW
        ? FC_KERNEL_DIRECT_GATHER_SIMD : FC_KERNEL_DIRECT_GATHER;
    return plan;
}

static fc_conv_plan fc_plan_direct_grad_x(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_make(ctx, dtype, FC_KERNEL_DIRECT_WVEC);
    for (fc_conv_plan level = plan; level.lanes > 0; level = fc_plan_narrower(level, dtype)) {
        if (fc_wvec_grad_x_applies(sh, level.lanes, dtype))
            return level;
        level.kernel = FC_KERNEL_DIRECT_WROWS;
        if (fc_wrows_grad_x_applies(sh, level.lanes, dtype))
            return level;
        level.kernel = FC_KERNEL_DIRECT_WVEC;
    }
    if (sh->stride_h != 1 || sh->stride_w != 1)
        plan.kernel = FC_KERNEL_DIRECT_SCATTER;
    else   /* the gather of dY with the flipped kernel, stride 1 */
        plan.kernel = plan.lanes > 0 && sh->kernel_w <= FC_DIRECT_GATHER_SIMD_MAX_KW
            ? FC_KERNEL_DIRECT_GATHER_SIMD : FC_KERNEL_DIRECT_GATHER;
    return plan;
}

static fc_conv_plan fc_plan_direct_grad_w(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_make(ctx, dtype, FC_KERNEL_DIRECT_KVGW);
    const fc_plan_isa *isa = &fc_plan_table[plan.simd];
    if (plan.lanes > 0) {
        plan.channel_vectors = fc_kvgw_channel_vectors(sh, isa);
        plan.kvgw_accumulators = isa->kvgw_accumulators;
        if (fc_kvgw_applies(sh, &plan, dtype))
            return plan;
    }
    plan.channel_vectors = plan.kvgw_accumulators = 0;
    if (fc_wvgw_applies(sh, plan.lanes, dtype)) {
        plan.kernel = FC_KERNEL_DIRECT_WVGW;
        plan.wvgw_channels = fc_wvgw_channels(sh, isa);
        return plan;
    }
    plan.kernel = plan.lanes > 0 && sh->stride_w == 1 && sh->kernel_w <= FC_DIRECT_DOT_SIMD_MAX_KW
        ? FC_KERNEL_DIRECT_DOT_SIMD : FC_KERNEL_DIRECT_DOT;
    return plan;
}

/* Images whose column matrix and dY the scratch budget holds (0: not even one image's). */
static fc_index fc_im2col_images_in_budget(const fc_conv_shape *sh, fc_dtype dtype)
{
    const fc_index crs = sh->in_channels * sh->kernel_h * sh->kernel_w;
    return FC_IM2COL_SCRATCH_BYTES / ((crs + sh->out_channels) * sh->out_h * sh->out_w * fc_plan_elem_bytes(dtype));
}

/* Images per GEMM of im2col's chunked backward: as many as the scratch budget holds, at least one. */
static fc_index fc_im2col_images_per_chunk(const fc_conv_shape *sh, fc_dtype dtype)
{
    const fc_index count = fc_im2col_images_in_budget(sh, dtype);
    return count < 1 ? 1 : (count < sh->batch ? count : sh->batch);
}

static fc_conv_plan fc_plan_im2col_chunked(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_make(ctx, dtype, FC_KERNEL_IM2COL_CHUNKED);
    plan.images_per_chunk = fc_im2col_images_per_chunk(sh, dtype);
    return plan;
}

/* im2col.as_forward: stride 1, padding from (kernel - 1) / 2 (its output plane, the layer's input, is then
 * no larger than dY's: no more multiply-adds than by_image's GEMM) to kernel - 1 (its own padding is
 * kernel - 1 - pad), and within the level's bounds on K / C and the input plane. */
static int fc_im2col_as_forward_applies(const fc_conv_shape *sh, const fc_plan_isa *isa)
{
    return isa->as_forward_max_k_per_c > 0 && sh->stride_h == 1 && sh->stride_w == 1
        && 2 * sh->pad_h >= sh->kernel_h - 1 && sh->pad_h <= sh->kernel_h - 1
        && 2 * sh->pad_w >= sh->kernel_w - 1 && sh->pad_w <= sh->kernel_w - 1
        && sh->out_channels <= isa->as_forward_max_k_per_c * sh->in_channels
        && sh->in_h * sh->in_w >= isa->as_forward_min_plane;
}

static fc_conv_plan fc_plan_im2col_grad_x(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_im2col_chunked(ctx, sh, dtype);
    const fc_index in_budget = fc_im2col_images_in_budget(sh, dtype);
    const int small_images = in_budget > 1 && sh->out_channels <= FC_IM2COL_BY_IMAGE_MAX_K;
    const int one_image_per_gemm = in_budget == 1 && sh->batch >= FC_IM2COL_BY_IMAGE_MIN_BATCH;
    if (sh->batch > 1 && (small_images || one_image_per_gemm))
        plan.kernel = FC_KERNEL_IM2COL_BY_IMAGE;
    if (fc_im2col_as_forward_applies(sh, &fc_plan_table[plan.simd]))
        plan.kernel = FC_KERNEL_IM2COL_AS_FORWARD;
    return plan;
}

/* The im2col forward: im2col.implicit where the level has it, stride_w is 2 (the driver splits the image
 * into even and odd columns) or 1 (the driver pads it), and every output row is whole vectors, or half
 * a vector with an even number of rows (a vector then holds two rows' halves), else im2col.fused. */
static fc_conv_plan fc_plan_im2col_forward(const fc_ctx *ctx, const fc_conv_shape *sh, fc_dtype dtype)
{
    fc_conv_plan plan = fc_plan_make(ctx, dtype, FC_KERNEL_IM2COL_FUSED);
    const int contiguous_taps = sh->stride_w == 2 || sh->stride_w == 1;
    const int whole_vectors = plan.lanes > 0 && sh->out_w % plan.lanes == 0;
    const int half_vectors = plan.lanes > 0 && 2 * sh->out_w == plan.lanes && sh->out_h % 2 == 0;
    if (fc_plan_table[plan.simd].implicit_forward && contiguous_taps && (whole_vectors || half_vectors))
        plan.kernel = FC_KERNEL_IM2COL_IMPLICIT;
    return plan;
}

/* ---- algo="auto" --------------------------------------------------------------------------------- */

static int fc_plan_short_reduction(const fc_conv_shape *sh)
{
    return sh->in_channels * sh->kernel_h * sh->kernel_w <= FC_PLAN_DIRECT_MAX_REDUCTION;
}

/* Whether the level's bounds on vectors of output channels admit a vectorised direct forward. */
static int fc_plan_forward_within_bounds(const fc_conv_shape *sh, const fc_conv_plan *plan)
{
    const fc_plan_isa *isa = &fc_plan_table[plan->simd];
    const fc_index vectors = (sh->out_channels + plan->lanes - 1) / plan->lanes;
    const fc_index reduction = sh->in_channels * sh->kernel_h * sh->kernel_w;
    if (isa->auto_max_vectors == 0 || vectors <= isa->auto_max_vectors)
        return 1;
    return reduction <= FC_PLAN_AUTO_SMALL_REDUCTION && vectors <= isa->auto_small_reduction_max_vectors;
}

fc_conv_plan fc_conv_plan_forward(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype)
{
    if (algo == FC_ALGO_IM2COL)
        return fc_plan_im2col_forward(ctx, shape, dtype);
    const fc_conv_plan direct = fc_plan_direct_forward(ctx, shape, dtype);
    const int vectorised = direct.kernel == FC_KERNEL_DIRECT_WVEC || direct.kernel == FC_KERNEL_DIRECT_KVEC;
    if (algo == FC_ALGO_DIRECT || (vectorised && fc_plan_forward_within_bounds(shape, &direct))
        || fc_plan_short_reduction(shape))
        return direct;
    return fc_plan_im2col_forward(ctx, shape, dtype);
}

fc_conv_plan fc_conv_plan_grad_x(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype)
{
    if (algo == FC_ALGO_IM2COL)
        return fc_plan_im2col_grad_x(ctx, shape, dtype);
    const fc_conv_plan direct = fc_plan_direct_grad_x(ctx, shape, dtype);
    const int vectorised = direct.kernel == FC_KERNEL_DIRECT_WVEC || direct.kernel == FC_KERNEL_DIRECT_WROWS;
    if (algo == FC_ALGO_DIRECT || vectorised || fc_plan_short_reduction(shape))
        return direct;
    return fc_plan_im2col_grad_x(ctx, shape, dtype);
}

fc_conv_plan fc_conv_plan_grad_w(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo, fc_dtype dtype)
{
    if (algo == FC_ALGO_IM2COL)
        return fc_plan_im2col_chunked(ctx, shape, dtype);
    const fc_conv_plan direct = fc_plan_direct_grad_w(ctx, shape, dtype);
    const int vectorised = direct.kernel == FC_KERNEL_DIRECT_KVGW || direct.kernel == FC_KERNEL_DIRECT_WVGW;
    if (algo == FC_ALGO_DIRECT || vectorised || fc_plan_short_reduction(shape))
        return direct;
    return fc_plan_im2col_chunked(ctx, shape, dtype);
}
