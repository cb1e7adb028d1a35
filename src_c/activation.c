/*
 * activation.c -- elementwise activations of the layer API (contract: fastconv.h, fc_relu_*).
 *
 * They exist in C for one reason: NumPy runs an elementwise op on one core, and on LeNet-5's first
 * activation (64 x 6 x 28 x 28) np.maximum took longer than the convolution that produced it
 * (measured 0.10 ms). Here the array is cut into fixed blocks shared by the team; each element is
 * independent, so the result cannot depend on the thread count.
 */
#ifndef FC_TEMPLATE_PASS

#include "fastconv.h"

/* Elements per parallel block, and the smallest array worth waking the team for. */
#define FC_ACT_BLOCK ((fc_index)16384)
#define FC_ACT_MIN_PARALLEL ((fc_index)32768)

#define FC_TEMPLATE_FILE "activation.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS */

int FC_FN(fc_relu_forward)(const fc_ctx *ctx, fc_index count, const real *x, real *y)
{
    const fc_index blocks = (count + FC_ACT_BLOCK - 1) / FC_ACT_BLOCK;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static) if (count >= FC_ACT_MIN_PARALLEL)
    for (fc_index b = 0; b < blocks; b++) {
        const fc_index end = (b + 1) * FC_ACT_BLOCK < count ? (b + 1) * FC_ACT_BLOCK : count;
        for (fc_index i = b * FC_ACT_BLOCK; i < end; i++)
            y[i] = x[i] < 0 ? (real)0 : x[i];       /* a NaN stays NaN, as np.maximum */
    }
    return FC_OK;
}

int FC_FN(fc_relu_backward)(const fc_ctx *ctx, fc_index count, const real *grad_y, const real *y,
                            real *grad_x)
{
    const fc_index blocks = (count + FC_ACT_BLOCK - 1) / FC_ACT_BLOCK;
    #pragma omp parallel for num_threads(ctx->num_threads) schedule(static) if (count >= FC_ACT_MIN_PARALLEL)
    for (fc_index b = 0; b < blocks; b++) {
        const fc_index end = (b + 1) * FC_ACT_BLOCK < count ? (b + 1) * FC_ACT_BLOCK : count;
        for (fc_index i = b * FC_ACT_BLOCK; i < end; i++) {
            const real grad = grad_y[i];   /* loaded unconditionally, so the loop vectorises as a blend */
            grad_x[i] = y[i] > 0 ? grad : (real)0;
        }
    }
    return FC_OK;
}

#endif /* FC_TEMPLATE_PASS */
