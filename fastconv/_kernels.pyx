# Thin binding to the C kernels of src_c/ (contract: src_c/fastconv.h).
#
# Everything here assumes fastconv.functional has already validated and normalised the arguments:
# arrays are C-contiguous, of one float dtype (float32 or float64), shapes agree, and the geometry
# (a ConvGeometry, or the pooling tuple) is consistent. This module only unpacks, drops the GIL, calls C
# and maps status codes to Python exceptions.
cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.stdlib cimport free, getenv, malloc

cnp.import_array()

cdef extern from "fastconv.h" nogil:
    ctypedef int64_t fc_index
    ctypedef enum fc_simd_level:
        FC_SIMD_SCALAR
        FC_SIMD_AVX2
        FC_SIMD_AVX512
    ctypedef struct fc_ctx:
        int num_threads
        fc_simd_level simd
    ctypedef struct fc_conv_shape:
        fc_index batch, in_channels, in_h, in_w
        fc_index out_channels, kernel_h, kernel_w
        fc_index stride_h, stride_w, pad_h, pad_w
        fc_index out_h, out_w
    ctypedef struct fc_pool_shape:
        fc_index batch, channels, in_h, in_w
        fc_index kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w
        fc_index out_h, out_w
    enum:
        FC_OK, FC_ENOMEM, FC_EINDEX, FC_EINVAL
    ctypedef enum fc_conv_algo:
        FC_ALGO_AUTO
        FC_ALGO_DIRECT
        FC_ALGO_IM2COL
    ctypedef enum fc_dtype:
        FC_DTYPE_F32
        FC_DTYPE_F64
    ctypedef enum fc_conv_kernel:
        FC_KERNEL_IM2COL_FUSED
    ctypedef struct fc_conv_plan:
        fc_conv_kernel kernel

    fc_simd_level fc_simd_best()
    int fc_simd_resolve(const char *request)
    const char *fc_simd_name(fc_simd_level level)
    int fc_have_openmp()
    int fc_max_threads()
    int fc_threads_for_call(int requested)
    void fc_threads_set_adaptive(int enabled)
    int fc_threads_adaptive()
    int fc_threads_free_cores(int cpus, double others_busy)

    ctypedef struct fc_cache_stats:
        int open_count, kept_blocks
        size_t kept_bytes
        unsigned long long hits, misses
    void *fc_cache_alloc(size_t bytes)
    void *fc_cache_calloc(size_t count, size_t size)
    void *fc_cache_realloc(void *block, size_t bytes)
    void fc_cache_free(void *block)
    void fc_cache_open()
    void fc_cache_close()
    fc_cache_stats fc_cache_get_stats()

    fc_conv_plan fc_conv_plan_forward(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, fc_dtype)
    fc_conv_plan fc_conv_plan_grad_x(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, fc_dtype)
    fc_conv_plan fc_conv_plan_grad_w(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, fc_dtype)
    const char *fc_conv_kernel_name(fc_conv_kernel kernel)

    int fc_gemm_f32(const fc_ctx *ctx, fc_index M, fc_index N, fc_index K, float alpha,
                    const float *A, fc_index rs_a, fc_index cs_a, const float *B, fc_index rs_b,
                    fc_index cs_b, float beta, float *C, fc_index ldc)
    int fc_gemm_f64(const fc_ctx *ctx, fc_index M, fc_index N, fc_index K, double alpha,
                    const double *A, fc_index rs_a, fc_index cs_a, const double *B, fc_index rs_b,
                    fc_index cs_b, double beta, double *C, fc_index ldc)

    int fc_conv2d_forward_f32(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, const float *, const float *,
                              const float *, float *)
    int fc_conv2d_forward_f64(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, const double *, const double *,
                              const double *, double *)
    int fc_relu_forward_f32(const fc_ctx *, fc_index, const float *, float *)
    int fc_relu_forward_f64(const fc_ctx *, fc_index, const double *, double *)
    int fc_relu_backward_f32(const fc_ctx *, fc_index, const float *, const float *, float *)
    int fc_relu_backward_f64(const fc_ctx *, fc_index, const double *, const double *, double *)
    ctypedef struct fc_sgd_rule:
        double lr, weight_decay, momentum
        int nesterov
    ctypedef struct fc_adam_rule:
        double weight_decay, beta1, beta2, eps, step_size, bias_correction2
    ctypedef struct fc_rmsprop_rule:
        double lr, weight_decay, alpha, eps, momentum
    int fc_sgd_step_f32(const fc_ctx *, const fc_sgd_rule *, fc_index, float *, const float *, float *)
    int fc_sgd_step_f64(const fc_ctx *, const fc_sgd_rule *, fc_index, double *, const double *, double *)
    int fc_adam_step_f32(const fc_ctx *, const fc_adam_rule *, fc_index, float *, const float *, float *, float *)
    int fc_adam_step_f64(const fc_ctx *, const fc_adam_rule *, fc_index, double *, const double *, double *,
                         double *)
    int fc_rmsprop_step_f32(const fc_ctx *, const fc_rmsprop_rule *, fc_index, float *, const float *, float *,
                            float *)
    int fc_rmsprop_step_f64(const fc_ctx *, const fc_rmsprop_rule *, fc_index, double *, const double *,
                            double *, double *)
    int fc_conv2d_backward_f32(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, const float *, const float *,
                               const float *, float *, float *, float *)
    int fc_conv2d_backward_f64(const fc_ctx *, const fc_conv_shape *, fc_conv_algo, const double *, const double *,
                               const double *, double *, double *, double *)

    int fc_max_pool2d_forward_f32(const fc_ctx *, const fc_pool_shape *, const float *, float *, int64_t *)
    int fc_max_pool2d_forward_f64(const fc_ctx *, const fc_pool_shape *, const double *, double *, int64_t *)
    int fc_max_pool2d_backward_f32(const fc_ctx *, const fc_pool_shape *, const float *, const int64_t *, float *)
    int fc_max_pool2d_backward_f64(const fc_ctx *, const fc_pool_shape *, const double *, const int64_t *, double *)
    int fc_max_pool2d_values_f32(const fc_ctx *, const fc_pool_shape *, const float *, float *, int)
    int fc_max_pool2d_values_f64(const fc_ctx *, const fc_pool_shape *, const double *, double *, int)
    ctypedef struct fc_conv_block:
        fc_conv_shape conv
        fc_conv_algo algo
        const void *weight
        const void *bias
        int relu
        int pool
        fc_pool_shape pool_shape
    int fc_conv_chain_forward_f32(const fc_ctx *, fc_index, int, const fc_conv_block *, const float *, float *)
    int fc_conv_chain_forward_f64(const fc_ctx *, fc_index, int, const fc_conv_block *, const double *, double *)
    int fc_avg_pool2d_forward_f32(const fc_ctx *, const fc_pool_shape *, const float *, float *)
    int fc_avg_pool2d_forward_f64(const fc_ctx *, const fc_pool_shape *, const double *, double *)
    int fc_avg_pool2d_backward_f32(const fc_ctx *, const fc_pool_shape *, const float *, float *)
    int fc_avg_pool2d_backward_f64(const fc_ctx *, const fc_pool_shape *, const double *, double *)

cdef extern from *:
    """
    #ifndef FC_BUILD_FLAGS
    #define FC_BUILD_FLAGS "unknown"
    #endif
    #ifndef FC_BUILD_COMPILER
    #define FC_BUILD_COMPILER "unknown"
    #endif
    #ifdef __VERSION__
    #define FC_COMPILER_VERSION __VERSION__
    #else
    #define FC_COMPILER_VERSION "unknown"
    #endif
    """
    const char *FC_BUILD_FLAGS
    const char *FC_BUILD_COMPILER
    const char *FC_COMPILER_VERSION

SIMD_NAMES = ("scalar", "avx2", "avx512")
# fastconv.conv2d's algo argument -> fc_conv_algo
ALGOS = {"auto": FC_ALGO_AUTO, "direct": FC_ALGO_DIRECT, "im2col": FC_ALGO_IM2COL}


# ---- build and machine facts ---------------------------------------------------------------------

def have_openmp():
    return bool(fc_have_openmp())

def max_threads():
    return fc_max_threads()

def threads_for_call(int requested):
    """The threads a kernel call asking for `requested` runs on now (see src_c/threads.c)."""
    return fc_threads_for_call(requested)

def set_adaptive_threads(bint enabled):
    fc_threads_set_adaptive(enabled)

def adaptive_threads():
    return bool(fc_threads_adaptive())

def threads_free_cores(int cpus, double others_busy):
    return fc_threads_free_cores(cpus, others_busy)

# ---- NumPy's allocator inside a training loop (src_c/block_cache.c) ----------------------------

cdef extern from "numpy/ndarraytypes.h":
    ctypedef struct PyDataMemAllocator:
        void *ctx
        void *(*malloc)(void *ctx, size_t size) noexcept nogil
        void *(*calloc)(void *ctx, size_t count, size_t size) noexcept nogil
        void *(*realloc)(void *ctx, void *block, size_t size) noexcept nogil
        void (*free)(void *ctx, void *block, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        char name[127]
        unsigned char version
        PyDataMemAllocator allocator

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

from cpython.pycapsule cimport PyCapsule_New
from libc.string cimport strcpy

cdef void *cache_malloc(void *ctx, size_t size) noexcept nogil:
    return fc_cache_alloc(size)

cdef void *cache_calloc(void *ctx, size_t count, size_t size) noexcept nogil:
    return fc_cache_calloc(count, size)

cdef void *cache_realloc(void *ctx, void *block, size_t size) noexcept nogil:
    return fc_cache_realloc(block, size)

cdef void cache_free(void *ctx, void *block, size_t size) noexcept nogil:
    fc_cache_free(block)

cdef PyDataMem_Handler cache_handler
strcpy(cache_handler.name, b"fastconv_block_cache")
cache_handler.version = 1
cache_handler.allocator.ctx = NULL
cache_handler.allocator.malloc = cache_malloc
cache_handler.allocator.calloc = cache_calloc
cache_handler.allocator.realloc = cache_realloc
cache_handler.allocator.free = cache_free
# Arrays keep a reference to the handler that made them and are freed through it, so one capsule
# lives as long as the module.
cdef object cache_handler_capsule = PyCapsule_New(&cache_handler, b"mem_handler", NULL)


class cached_arrays:
    """Context manager: NumPy arrays created inside (in this thread or context) take their memory from
    the block cache, which keeps freed blocks for the next array of the same size until the last
    cached_arrays exits. Arrays that outlive the block stay valid."""

    def __enter__(self):
        fc_cache_open()
        self.previous = PyDataMem_SetHandler(cache_handler_capsule)
        return self

    def __exit__(self, *exc_info):
        PyDataMem_SetHandler(self.previous)
        fc_cache_close()
        return False


def block_cache_stats():
    """The block cache's state: open_count, kept_blocks, kept_bytes, hits, misses."""
    return fc_cache_get_stats()


def simd_best():
    """Name of the best SIMD level this CPU runs."""
    return SIMD_NAMES[<int>fc_simd_best()]

def simd_level():
    """Level number for the FASTCONV_SIMD environment variable as it is now (unset or '' = best, capped to
    what the CPU runs); -1 if its value is unknown. Read with C's getenv, which sees os.environ's
    changes (they go through putenv): about 0.1 us, against 1.8 us for os.environ.get plus the call."""
    return fc_simd_resolve(getenv(b"FASTCONV_SIMD"))

def compiler_info():
    return {"compiler": FC_BUILD_COMPILER.decode(), "compiler_version": FC_COMPILER_VERSION.decode(),
            "flags": FC_BUILD_FLAGS.decode()}


# ---- helpers -------------------------------------------------------------------------------------

cdef inline void* data(cnp.ndarray arr):
    return cnp.PyArray_DATA(arr)

cdef inline void* data_or_null(object arr):
    return NULL if arr is None else cnp.PyArray_DATA(<cnp.ndarray>arr)

cdef inline fc_ctx make_ctx(int num_threads, int simd):
    cdef fc_ctx ctx
    ctx.num_threads = fc_threads_for_call(num_threads)
    ctx.simd = <fc_simd_level>simd
    return ctx

cdef inline fc_conv_shape make_conv_shape(object g):
    """g: functional.ConvGeometry, whose fields are named as fc_conv_shape's."""
    cdef fc_conv_shape s
    s.batch, s.in_channels, s.in_h, s.in_w = g.batch, g.in_channels, g.in_h, g.in_w
    s.out_channels, s.kernel_h, s.kernel_w = g.out_channels, g.kernel_h, g.kernel_w
    s.stride_h, s.stride_w, s.pad_h, s.pad_w = g.stride_h, g.stride_w, g.pad_h, g.pad_w
    s.out_h, s.out_w = g.out_h, g.out_w
    return s

cdef inline fc_pool_shape make_pool_shape(tuple g):
    """g = (batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w)"""
    cdef fc_pool_shape s
    (s.batch, s.channels, s.in_h, s.in_w, s.kernel_h, s.kernel_w,
     s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.out_h, s.out_w) = g
    return s

cdef int check_status(int status, str what) except -1:
    if status == FC_OK:
        return 0
    if status == FC_ENOMEM:
        raise MemoryError(f"{what}: could not allocate scratch memory")
    if status == FC_EINDEX:
        raise ValueError(f"indices: {what} found an index outside [0, in_h*in_w) of its input plane")
    raise ValueError(f"{what}: invalid arguments reached the C kernel (status {status})")


# ---- kernels -------------------------------------------------------------------------------------

cdef inline bint element_strides(cnp.ndarray arr, fc_index item, fc_index *rows, fc_index *cols):
    """arr's strides in elements into rows, cols; False unless arr's data and every stride are whole
    non-negative elements. A dimension of size 1 takes its C-contiguous stride (numpy leaves the stride
    of such a dimension arbitrary, and the kernel's layout rules compare strides)."""
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(arr)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(arr)
    cdef cnp.npy_intp row_stride = strides[0] if shape[0] > 1 else shape[1] * item
    cdef cnp.npy_intp col_stride = strides[1] if shape[1] > 1 else item
    if (<size_t>cnp.PyArray_DATA(arr)) % item or row_stride < 0 or col_stride < 0 \
            or row_stride % item or col_stride % item:
        return False
    rows[0] = row_stride // item
    cols[0] = col_stride // item
    return True


def gemm(object a, object b, int num_threads, int simd):
    """a @ b as a new C-contiguous array when a and b are what the C GEMM takes as they are: 2-D ndarrays
    of one native float32 or float64 dtype, a.shape[1] == b.shape[0], data and strides in whole
    non-negative elements (any layout: transposed views are not copied). Otherwise None, and nothing is
    computed: fastconv.functional.gemm then checks and converts the operands (and names what is wrong).
    The checks are done here, in C, because in Python they cost more than the product of LeNet's
    im2col GEMMs (1.5 of 5 us)."""
    if not (cnp.PyArray_Check(a) and cnp.PyArray_Check(b)):
        return None
    cdef cnp.ndarray A = <cnp.ndarray>a, B = <cnp.ndarray>b
    cdef int dtype = cnp.PyArray_TYPE(A)
    if (cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_NDIM(B) != 2 or cnp.PyArray_TYPE(B) != dtype
            or (dtype != cnp.NPY_FLOAT32 and dtype != cnp.NPY_FLOAT64)
            or not cnp.PyArray_ISNOTSWAPPED(A) or not cnp.PyArray_ISNOTSWAPPED(B)):
        return None
    cdef fc_index M = cnp.PyArray_DIM(A, 0), K = cnp.PyArray_DIM(A, 1), N = cnp.PyArray_DIM(B, 1)
    cdef fc_index item = cnp.PyArray_ITEMSIZE(A)
    cdef fc_index rs_a, cs_a, rs_b, cs_b
    if cnp.PyArray_DIM(B, 0) != K or not element_strides(A, item, &rs_a, &cs_a) \
            or not element_strides(B, item, &rs_b, &cs_b):
        return None
    cdef cnp.npy_intp dims[2]
    dims[0], dims[1] = M, N
    cdef cnp.ndarray C = cnp.PyArray_EMPTY(2, dims, dtype, 0)
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef void *pa = data(A)
    cdef void *pb = data(B)
    cdef void *pc = data(C)
    cdef int status
    with nogil:
        if dtype == cnp.NPY_FLOAT32:
            status = fc_gemm_f32(&ctx, M, N, K, 1, <const float *>pa, rs_a, cs_a,
                                 <const float *>pb, rs_b, cs_b, 0, <float *>pc, N)
        else:
            status = fc_gemm_f64(&ctx, M, N, K, 1, <const double *>pa, rs_a, cs_a,
                                 <const double *>pb, rs_b, cs_b, 0, <double *>pc, N)
    check_status(status, "gemm")
    return C


def conv2d_plan(object geometry, bint is_f32, int simd, int algo):
    """(forward, grad_x, grad_w): the names of the kernels `algo` runs for this geometry, dtype and SIMD
    level (src_c/conv_plan.c decides; the thread count does not enter it)."""
    cdef fc_ctx ctx = make_ctx(1, simd)
    cdef fc_conv_shape shape = make_conv_shape(geometry)
    cdef fc_dtype dtype = FC_DTYPE_F32 if is_f32 else FC_DTYPE_F64
    cdef fc_conv_algo conv_algo = <fc_conv_algo>algo
    return (fc_conv_kernel_name(fc_conv_plan_forward(&ctx, &shape, conv_algo, dtype).kernel).decode(),
            fc_conv_kernel_name(fc_conv_plan_grad_x(&ctx, &shape, conv_algo, dtype).kernel).decode(),
            fc_conv_kernel_name(fc_conv_plan_grad_w(&ctx, &shape, conv_algo, dtype).kernel).decode())


def conv2d_forward(int algo, object geometry, cnp.ndarray x, cnp.ndarray weight, object bias,
                   cnp.ndarray y, int num_threads, int simd):
    """y = conv2d(x, weight, bias) with the kernel conv_plan.c picks for `algo` (an ALGOS value)."""
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_conv_shape shape = make_conv_shape(geometry)
    cdef fc_conv_algo conv_algo = <fc_conv_algo>algo
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pb = data_or_null(bias)
    cdef void *py = data(y)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_conv2d_forward_f32(&ctx, &shape, conv_algo, <float*>px, <float*>pw, <float*>pb, <float*>py)
        else:
            status = fc_conv2d_forward_f64(&ctx, &shape, conv_algo, <double*>px, <double*>pw, <double*>pb,
                                           <double*>py)
    check_status(status, "conv2d")


def conv2d_backward(int algo, object geometry, cnp.ndarray grad_y, cnp.ndarray x, cnp.ndarray weight,
                    object grad_x, object grad_w, object grad_b, int num_threads, int simd):
    """The gradients with the kernels conv_plan.c picks for `algo`; any of grad_x, grad_w, grad_b may be
    None (that gradient is not computed)."""
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_conv_shape shape = make_conv_shape(geometry)
    cdef fc_conv_algo conv_algo = <fc_conv_algo>algo
    cdef void *pgy = data(grad_y)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pgx = data_or_null(grad_x)
    cdef void *pgw = data_or_null(grad_w)
    cdef void *pgb = data_or_null(grad_b)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_conv2d_backward_f32(&ctx, &shape, conv_algo, <float*>pgy, <float*>px, <float*>pw,
                                            <float*>pgx, <float*>pgw, <float*>pgb)
        else:
            status = fc_conv2d_backward_f64(&ctx, &shape, conv_algo, <double*>pgy, <double*>px, <double*>pw,
                                            <double*>pgx, <double*>pgw, <double*>pgb)
    check_status(status, "conv2d_backward")


def max_pool2d_forward(tuple geometry, cnp.ndarray x, cnp.ndarray y, cnp.ndarray indices,
                       int num_threads, int simd):
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_pool_shape shape = make_pool_shape(geometry)
    cdef void *px = data(x)
    cdef void *py = data(y)
    cdef int64_t *pi = <int64_t*>data(indices)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_max_pool2d_forward_f32(&ctx, &shape, <float*>px, <float*>py, pi)
        else:
            status = fc_max_pool2d_forward_f64(&ctx, &shape, <double*>px, <double*>py, pi)
    check_status(status, "max_pool2d")


def max_pool2d_values(tuple geometry, cnp.ndarray x, cnp.ndarray y, bint relu, int num_threads, int simd):
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_pool_shape shape = make_pool_shape(geometry)
    cdef void *px = data(x)
    cdef void *py = data(y)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_max_pool2d_values_f32(&ctx, &shape, <float*>px, <float*>py, relu)
        else:
            status = fc_max_pool2d_values_f64(&ctx, &shape, <double*>px, <double*>py, relu)
    check_status(status, "max_pool2d_values")


def conv_chain_forward(list blocks, cnp.ndarray x, cnp.ndarray y, int num_threads, int simd):
    """blocks: (algo code, ConvGeometry, weight, bias or None, relu, pool tuple or None) per block, the
    arrays in x's dtype and C-contiguous; the list holds them alive during the call."""
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef int count = len(blocks)
    cdef fc_conv_block *cblocks = <fc_conv_block *>malloc(count * sizeof(fc_conv_block))
    cdef void *px = data(x)
    cdef void *py = data(y)
    cdef fc_index batch = x.shape[0]
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status, i
    if cblocks == NULL:
        raise MemoryError("conv_chain: could not allocate the block list")
    try:
        for i in range(count):
            algo, geometry, weight, bias, relu, pool = blocks[i]
            cblocks[i].conv = make_conv_shape(geometry)
            cblocks[i].algo = <fc_conv_algo>algo
            cblocks[i].weight = data(weight)
            cblocks[i].bias = data_or_null(bias)
            cblocks[i].relu = relu
            cblocks[i].pool = pool is not None
            if pool is not None:
                cblocks[i].pool_shape = make_pool_shape(pool)
        with nogil:
            if is_f32:
                status = fc_conv_chain_forward_f32(&ctx, batch, count, cblocks, <float*>px, <float*>py)
            else:
                status = fc_conv_chain_forward_f64(&ctx, batch, count, cblocks, <double*>px, <double*>py)
    finally:
        free(cblocks)
    check_status(status, "conv_chain")


def max_pool2d_backward(tuple geometry, cnp.ndarray grad_y, cnp.ndarray indices, cnp.ndarray grad_x,
                        int num_threads, int simd):
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_pool_shape shape = make_pool_shape(geometry)
    cdef void *pgy = data(grad_y)
    cdef const int64_t *pi = <const int64_t*>data(indices)
    cdef void *pgx = data(grad_x)
    cdef bint is_f32 = grad_y.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_max_pool2d_backward_f32(&ctx, &shape, <float*>pgy, pi, <float*>pgx)
        else:
            status = fc_max_pool2d_backward_f64(&ctx, &shape, <double*>pgy, pi, <double*>pgx)
    check_status(status, "max_pool2d_backward")


def avg_pool2d_forward(tuple geometry, cnp.ndarray x, cnp.ndarray y, int num_threads, int simd):
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_pool_shape shape = make_pool_shape(geometry)
    cdef void *px = data(x)
    cdef void *py = data(y)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_avg_pool2d_forward_f32(&ctx, &shape, <float*>px, <float*>py)
        else:
            status = fc_avg_pool2d_forward_f64(&ctx, &shape, <double*>px, <double*>py)
    check_status(status, "avg_pool2d")


def avg_pool2d_backward(tuple geometry, cnp.ndarray grad_y, cnp.ndarray grad_x, int num_threads, int simd):
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_pool_shape shape = make_pool_shape(geometry)
    cdef void *pgy = data(grad_y)
    cdef void *pgx = data(grad_x)
    cdef bint is_f32 = grad_y.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_avg_pool2d_backward_f32(&ctx, &shape, <float*>pgy, <float*>pgx)
        else:
            status = fc_avg_pool2d_backward_f64(&ctx, &shape, <double*>pgy, <double*>pgx)
    check_status(status, "avg_pool2d_backward")


def relu_forward(cnp.ndarray x, cnp.ndarray y, int num_threads, int simd):
    """y = max(x, 0); dense arrays of one float dtype and size (y may be x)."""
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_index count = x.size
    cdef void *px = data(x)
    cdef void *py = data(y)
    cdef bint is_f32 = x.dtype.num == cnp.NPY_FLOAT32
    with nogil:
        if is_f32:
            fc_relu_forward_f32(&ctx, count, <const float *>px, <float *>py)
        else:
            fc_relu_forward_f64(&ctx, count, <const double *>px, <double *>py)


def relu_backward(cnp.ndarray grad_y, cnp.ndarray y, cnp.ndarray grad_x, int num_threads, int simd):
    """grad_x = grad_y where y > 0, else 0; dense arrays of one float dtype and size."""
    cdef fc_ctx ctx = make_ctx(num_threads, simd)
    cdef fc_index count = y.size
    cdef void *pg = data(grad_y)
    cdef void *py = data(y)
    cdef void *pgx = data(grad_x)
    cdef bint is_f32 = y.dtype.num == cnp.NPY_FLOAT32
    with nogil:
        if is_f32:
            fc_relu_backward_f32(&ctx, count, <const float *>pg, <const float *>py, <float *>pgx)
        else:
            fc_relu_backward_f64(&ctx, count, <const double *>pg, <const double *>py, <double *>pgx)


# ---- optimizer steps (src_c/optim.c) -------------------------------------------------------------
# param, grad and the state arrays: dense, one float dtype, one size (fastconv.optim checks); a state
# array may be None where the rule has no momentum.

def sgd_step(cnp.ndarray param, cnp.ndarray grad, object buffer, double lr, double weight_decay,
             double momentum, bint nesterov, int num_threads):
    cdef fc_ctx ctx = make_ctx(num_threads, 0)
    cdef fc_sgd_rule rule = fc_sgd_rule(lr, weight_decay, momentum, nesterov)
    cdef fc_index count = param.size
    cdef void *pp = data(param)
    cdef void *pg = data(grad)
    cdef void *pb = data_or_null(buffer)
    cdef bint is_f32 = param.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_sgd_step_f32(&ctx, &rule, count, <float *>pp, <const float *>pg, <float *>pb)
        else:
            status = fc_sgd_step_f64(&ctx, &rule, count, <double *>pp, <const double *>pg, <double *>pb)
    check_status(status, "sgd_step")


def adam_step(cnp.ndarray param, cnp.ndarray grad, cnp.ndarray m, cnp.ndarray v, double weight_decay,
              double beta1, double beta2, double eps, double step_size, double bias_correction2,
              int num_threads):
    cdef fc_ctx ctx = make_ctx(num_threads, 0)
    cdef fc_adam_rule rule = fc_adam_rule(weight_decay, beta1, beta2, eps, step_size, bias_correction2)
    cdef fc_index count = param.size
    cdef void *pp = data(param)
    cdef void *pg = data(grad)
    cdef void *pm = data(m)
    cdef void *pv = data(v)
    cdef bint is_f32 = param.dtype.num == cnp.NPY_FLOAT32
    with nogil:
        if is_f32:
            fc_adam_step_f32(&ctx, &rule, count, <float *>pp, <const float *>pg, <float *>pm, <float *>pv)
        else:
            fc_adam_step_f64(&ctx, &rule, count, <double *>pp, <const double *>pg, <double *>pm, <double *>pv)


def rmsprop_step(cnp.ndarray param, cnp.ndarray grad, cnp.ndarray square_avg, object buffer, double lr,
                 double weight_decay, double alpha, double eps, double momentum, int num_threads):
    cdef fc_ctx ctx = make_ctx(num_threads, 0)
    cdef fc_rmsprop_rule rule = fc_rmsprop_rule(lr, weight_decay, alpha, eps, momentum)
    cdef fc_index count = param.size
    cdef void *pp = data(param)
    cdef void *pg = data(grad)
    cdef void *ps = data(square_avg)
    cdef void *pb = data_or_null(buffer)
    cdef bint is_f32 = param.dtype.num == cnp.NPY_FLOAT32
    cdef int status
    with nogil:
        if is_f32:
            status = fc_rmsprop_step_f32(&ctx, &rule, count, <float *>pp, <const float *>pg, <float *>ps,
                                         <float *>pb)
        else:
            status = fc_rmsprop_step_f64(&ctx, &rule, count, <double *>pp, <const double *>pg, <double *>ps,
                                         <double *>pb)
    check_status(status, "rmsprop_step")
