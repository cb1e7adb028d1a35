/*
 * conv2d.c -- the convolution entry points the binding calls: plan each pass (conv_plan.c), then run
 * it with the driver of its kernel's family (conv_direct.c or conv_im2col.c). Contract: fastconv.h.
 */
#ifndef FC_TEMPLATE_PASS
#include "fastconv.h"

#define FC_TEMPLATE_FILE "conv2d.c"
#include "fc_template.h"

#else /* FC_TEMPLATE_PASS: `real` is float or double */

int FC_FN(fc_conv2d_forward)(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo,
                             const real *x, const real *weight, const real *bias, real *y)
{
    const fc_conv_plan plan = fc_conv_plan_forward(ctx, shape, algo, FC_DTYPE);
    if (fc_conv_kernel_is_direct(plan.kernel))
        return FC_FN(fc_conv2d_forward_direct)(ctx, shape, x, weight, bias, y);
    return FC_FN(fc_conv2d_forward_im2col)(ctx, shape, x, weight, bias, y);
}

/* One family's backward for the gradients that are not NULL. */
static int FC_FN(backward_family)(int direct, const fc_ctx *ctx, const fc_conv_shape *shape, const real *grad_y,
                                  const real *x, const real *weight, real *grad_x, real *grad_w, real *grad_b)
{
    if (direct)
        return FC_FN(fc_conv2d_backward_direct)(ctx, shape, grad_y, x, weight, grad_x, grad_w, grad_b);
    return FC_FN(fc_conv2d_backward_im2col)(ctx, shape, grad_y, x, weight, grad_x, grad_w, grad_b);
}

int FC_FN(fc_conv2d_backward)(const fc_ctx *ctx, const fc_conv_shape *shape, fc_conv_algo algo,
                              const real *grad_y, const real *x, const real *weight,
                              real *grad_x, real *grad_w, real *grad_b)
{
    const int direct_x = fc_conv_kernel_is_direct(fc_conv_plan_grad_x(ctx, shape, algo, FC_DTYPE).kernel);
    const int direct_w = fc_conv_kernel_is_direct(fc_conv_plan_grad_w(ctx, shape, algo, FC_DTYPE).kernel);
    if (grad_x == NULL || direct_x == direct_w)   /* one family: one call, sharing its scratch */
        return FC_FN(backward_family)(direct_w, ctx, shape, grad_y, x, weight, grad_x, grad_w, grad_b);
    const int status = FC_FN(backward_family)(direct_w, ctx, shape, grad_y, x, weight, NULL, grad_w, grad_b);
    if (status != FC_OK)
        return status;
    return FC_FN(backward_family)(direct_x, ctx, shape, grad_y, x, weight, grad_x, NULL, NULL);
}

#endif /* FC_TEMPLATE_PASS */
