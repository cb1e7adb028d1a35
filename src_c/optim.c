/*
 * optim.c -- one optimizer step on one parameter array, in place (contract: fastconv.h, fc_*_step).
 *
 * The rules are fastconv.optim's (PyTorch's). They exist in C for the call count: in NumPy a step is
 * three to nine array operations per parameter, and on LeNet-5's ten small arrays the cost of those
 * calls, not the arithmetic, was the step. Each element is independent, so the result cannot depend on
 * the thread count.
 */
#ifndef FC_TEMPLATE_PASS

#include <math.h>

#include "fastconv.h"

/* Elements per parallel block, and the smallest array worth waking the team for. */
#define FC_OPTIM_BLOCK ((fc_index)16384)
#define FC_OPTIM_MIN_PARALLEL ((fc_index)65536)

#define FC_TEMPLATE_FILE "optim.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS */

#undef FC_SQRT
#if FC_IS_F32
#define FC_SQRT sqrtf   /* in real's precision, as NumPy's */
#else
#define FC_SQRT sqrt
#endif

/* The rules on elements [begin, end): plain loops over restrict pointers, which GCC vectorises (and
 * unswitches on the settings); an `omp simd` loop inside the parallel one stayed scalar. */
static inline void FC_FN(sgd_range)(const fc_sgd_rule *rule, fc_index begin, fc_index end,
                                    real *restrict param, const real *restrict grad, real *restrict buffer)
{
    const real lr = (real)rule->lr, decay = (real)rule->weight_decay, momentum = (real)rule->momentum;
    const int nesterov = rule->nesterov;
    for (fc_index i = begin; i < end; i++) {
        real g = decay != 0 ? grad[i] + decay * param[i] : grad[i];
        if (momentum != 0) {
            const real b = momentum * buffer[i] + g;
            buffer[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param[i] -= lr * g;
    }
}

static inline void FC_FN(adam_range)(const fc_adam_rule *rule, fc_index begin, fc_index end,
                                     real *restrict param, const real *restrict grad, real *restrict m,
                                     real *restrict v)
{
    const real decay = (real)rule->weight_decay, beta1 = (real)rule->beta1, beta2 = (real)rule->beta2;
    const real step_size = (real)rule->step_size, correction2 = (real)rule->bias_correction2;
    const real eps = (real)rule->eps;
    for (fc_index i = begin; i < end; i++) {
        const real g = decay != 0 ? grad[i] + decay * param[i] : grad[i];
        const real mi = beta1 * m[i] + (1 - beta1) * g;
        const real vi = beta2 * v[i] + (1 - beta2) * (g * g);
        m[i] = mi;
        v[i] = vi;
        param[i] -= step_size * (mi / (FC_SQRT(vi / correction2) + eps));
    }
}

static inline void FC_FN(rmsprop_range)(const fc_rmsprop_rule *rule, fc_index begin, fc_index end,
                                        real *restrict param, const real *restrict grad,
                                        real *restrict square_avg, real *restrict buffer)
{
    const real lr = (real)rule->lr, decay = (real)rule->weight_decay, alpha = (real)rule->alpha;
    const real eps = (real)rule->eps, momentum = (real)rule->momentum;
    for (fc_index i = begin; i < end; i++) {
        const real g = decay != 0 ? grad[i] + decay * param[i] : grad[i];
        const real s = alpha * square_avg[i] + (1 - alpha) * (g * g);
        square_avg[i] = s;
        real step = g / (FC_SQRT(s) + eps);
        if (momentum != 0) {
            step = momentum * buffer[i] + step;
            buffer[i] = step;
        }
        param[i] -= lr * step;
    }
}

/* Fixed blocks of FC_OPTIM_BLOCK elements shared by the team (one thread below FC_OPTIM_MIN_PARALLEL). */
#define FC_OPTIM_BLOCKS(count, call)                                                                   \
    do {                                                                                              \
        const fc_index blocks = ((count) + FC_OPTIM_BLOCK - 1) / FC_OPTIM_BLOCK;                       \
        _Pragma("omp parallel for num_threads(ctx->num_threads) schedule(static) if ((count) >= FC_OPTIM_MIN_PARALLEL)") \
        for (fc_index block = 0; block < blocks; block++) {                                           \
            const fc_index begin = block * FC_OPTIM_BLOCK;                                            \
            const fc_index end = begin + FC_OPTIM_BLOCK < (count) ? begin + FC_OPTIM_BLOCK : (count);  \
            call;                                                                                     \
        }                                                                                             \
    } while (0)

int FC_FN(fc_sgd_step)(const fc_ctx *ctx, const fc_sgd_rule *rule, fc_index count, real *param,
                       const real *grad, real *buffer)
{
    if (!buffer && rule->momentum != 0)
        return FC_EINVAL;
    FC_OPTIM_BLOCKS(count, FC_FN(sgd_range)(rule, begin, end, param, grad, buffer));
    return FC_OK;
}

int FC_FN(fc_adam_step)(const fc_ctx *ctx, const fc_adam_rule *rule, fc_index count, real *param,
                        const real *grad, real *m, real *v)
{
    FC_OPTIM_BLOCKS(count, FC_FN(adam_range)(rule, begin, end, param, grad, m, v));
    return FC_OK;
}

int FC_FN(fc_rmsprop_step)(const fc_ctx *ctx, const fc_rmsprop_rule *rule, fc_index count, real *param,
                           const real *grad, real *square_avg, real *buffer)
{
    if (!buffer && rule->momentum != 0)
        return FC_EINVAL;
    FC_OPTIM_BLOCKS(count, FC_FN(rmsprop_range)(rule, begin, end, param, grad, square_avg, buffer));
    return FC_OK;
}

#endif /* FC_TEMPLATE_PASS */
