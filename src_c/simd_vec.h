/*
 * simd_vec.h -- the one vector layer of the explicit SIMD kernels: a small vocabulary, written once for
 * AVX2 + FMA and AVX-512 and for float and double.
 *
 * Include it inside an fc_template.h pass (`real`, FC_FN, FC_IS_F32 set) with FC_VEC_LEVEL defined as
 * FC_VEC_AVX2 or FC_VEC_AVX512; it (re)defines, for that level and type:
 *   FCV_TARGET     the level's target attribute (simd_targets.h), for every function using the vocabulary
 *   FCV_FN(name)   name_avx2_f32 / name_avx512_f64 ...: one symbol per level and type
 *   fcv_vec, fcv_mask, FCV_LANES   a vector of real, a set of lanes, the lanes per vector
 *   fcv_set1 / fcv_fmadd / fcv_add / fcv_mul / fcv_loadu / fcv_storeu
 *   fcv_load_mask (masked-off lanes read as 0 and are not touched in memory) / fcv_store_mask /
 *   fcv_keep_mask (the other lanes zeroed) / fcv_reduce (horizontal sum in a fixed order)
 *   FCV_FN(lane_mask)(lo, hi), FCV_FN(store_first)(ptr, v, count), FCV_FN(shifted)(lo, hi, rem),
 *   FCV_FN(transpose)(rows) (FCV_LANES vectors, transposed in place), FCV_SHIFT_LOADS(taps)
 * Included with FC_VEC_LEVEL undefined, it drops the vocabulary again. It has no include guard: a file
 * includes it once per level and type (the direct kernels through simd_template.h; gemm_kernels.c
 * around its AVX2 and its AVX-512 micro-kernels).
 */
#include "simd_targets.h"
#if FC_HAVE_X86
#include <immintrin.h>
#endif

#define FC_VEC_AVX2 1      /* = FC_SIMD_AVX2, as a preprocessor number */
#define FC_VEC_AVX512 2    /* = FC_SIMD_AVX512 */

#undef FCV_TARGET
#undef FCV_FN
#undef fcv_vec
#undef fcv_mask
#undef FCV_LANES
#undef fcv_set1
#undef fcv_fmadd
#undef fcv_add
#undef fcv_mul
#undef fcv_loadu
#undef fcv_storeu
#undef fcv_load_mask
#undef fcv_store_mask
#undef fcv_keep_mask
#undef fcv_reduce
#undef FCV_SHIFT_LOADS
#undef fcv_expand_load_mask
#undef fcv_load_half_mask
#undef fcv_interleave_low
#undef fcv_load_halves

#ifdef FC_VEC_LEVEL

/* The vocabulary: fcv_vec (a vector of real), fcv_mask (which lanes), FCV_LANES, and
 * fcv_set1 / fcv_fmadd / fcv_add / fcv_mul / fcv_load_mask (masked-off lanes read as 0 and are not touched in
 * memory) / fcv_store_mask / fcv_keep_mask (the other lanes zeroed) / fcv_reduce (horizontal sum in
 * a fixed order) / lane_mask(lo, hi); AVX-512 only: fcv_expand_load_mask (consecutive values into the
 * mask's lanes, in order, the others 0), fcv_load_halves(lo, hi) (the low half of the lanes from lo, the
 * high half from hi), fcv_load_half_mask (the mask's lanes of the low half, the high half undefined),
 * fcv_interleave_low(a, b) (a0 b0 a1 b1 ...: the low halves of a and b interleaved). */
#if FC_VEC_LEVEL == FC_VEC_AVX512
#define FCV_TARGET FC_TARGET_AVX512
#define FCV_FN(name) FC_FN(FC_CAT(name, avx512))
#if FC_IS_F32
#define fcv_vec __m512
#define fcv_mask __mmask16
#define FCV_LANES 16
#define fcv_set1 _mm512_set1_ps
#define fcv_fmadd _mm512_fmadd_ps
#define fcv_add _mm512_add_ps
#define fcv_mul _mm512_mul_ps
#define fcv_load_mask(ptr, mask) _mm512_maskz_loadu_ps((mask), (ptr))
#define fcv_store_mask(ptr, mask, v) _mm512_mask_storeu_ps((ptr), (mask), (v))
#define fcv_keep_mask(v, mask) _mm512_maskz_mov_ps((mask), (v))
#define fcv_reduce _mm512_reduce_add_ps
#define fcv_expand_load_mask(ptr, mask) _mm512_maskz_expandloadu_ps((mask), (ptr))
#define fcv_load_half_mask(ptr, mask) _mm512_castps256_ps512(_mm256_maskz_loadu_ps((__mmask8)(mask), (ptr)))
#define fcv_interleave_low(a, b) \
    _mm512_permutex2var_ps((a), _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), (b))
#define fcv_load_halves(lo, hi) _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(lo)), _mm256_loadu_ps(hi), 1)
#else
#define fcv_vec __m512d
#define fcv_mask __mmask8
#define FCV_LANES 8
#define fcv_set1 _mm512_set1_pd
#define fcv_fmadd _mm512_fmadd_pd
#define fcv_add _mm512_add_pd
#define fcv_mul _mm512_mul_pd
#define fcv_load_mask(ptr, mask) _mm512_maskz_loadu_pd((mask), (ptr))
#define fcv_store_mask(ptr, mask, v) _mm512_mask_storeu_pd((ptr), (mask), (v))
#define fcv_keep_mask(v, mask) _mm512_maskz_mov_pd((mask), (v))
#define fcv_reduce _mm512_reduce_add_pd
#define fcv_expand_load_mask(ptr, mask) _mm512_maskz_expandloadu_pd((mask), (ptr))
#define fcv_load_half_mask(ptr, mask) _mm512_castpd256_pd512(_mm256_maskz_loadu_pd((__mmask8)(mask), (ptr)))
#define fcv_interleave_low(a, b) _mm512_permutex2var_pd((a), _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), (b))
#define fcv_load_halves(lo, hi) _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(lo)), _mm256_loadu_pd(hi), 1)
#endif

/* Lanes j with lo <= j < hi (clamped to the vector). */
static inline FCV_TARGET fcv_mask FCV_FN(lane_mask)(fc_index lo, fc_index hi)
{
    lo = lo < 0 ? 0 : (lo > FCV_LANES ? FCV_LANES : lo);
    hi = hi < lo ? lo : (hi > FCV_LANES ? FCV_LANES : hi);
    return (fcv_mask)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

#else /* FC_VEC_AVX2: AVX2 + FMA */
#define FCV_TARGET FC_TARGET_AVX2
#define FCV_FN(name) FC_FN(FC_CAT(name, avx2))
#define fcv_mask __m256i
#if FC_IS_F32
#define fcv_vec __m256
#define FCV_LANES 8
#define fcv_set1 _mm256_set1_ps
#define fcv_fmadd _mm256_fmadd_ps
#define fcv_add _mm256_add_ps
#define fcv_mul _mm256_mul_ps
#define fcv_load_mask(ptr, mask) _mm256_maskload_ps((ptr), (mask))
#define fcv_store_mask(ptr, mask, v) _mm256_maskstore_ps((ptr), (mask), (v))
#define fcv_keep_mask(v, mask) _mm256_and_ps((v), _mm256_castsi256_ps(mask))

static inline FCV_TARGET float FCV_FN(hsum)(__m256 v)
{
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
    return _mm_cvtss_f32(sum);
}

static inline FCV_TARGET fcv_mask FCV_FN(lane_mask)(fc_index lo, fc_index hi)
{
    lo = lo < 0 ? 0 : (lo > FCV_LANES ? FCV_LANES : lo);
    hi = hi < lo ? lo : (hi > FCV_LANES ? FCV_LANES : hi);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane));
}
#else
#define fcv_vec __m256d
#define FCV_LANES 4
#define fcv_set1 _mm256_set1_pd
#define fcv_fmadd _mm256_fmadd_pd
#define fcv_add _mm256_add_pd
#define fcv_mul _mm256_mul_pd
#define fcv_load_mask(ptr, mask) _mm256_maskload_pd((ptr), (mask))
#define fcv_store_mask(ptr, mask, v) _mm256_maskstore_pd((ptr), (mask), (v))
#define fcv_keep_mask(v, mask) _mm256_and_pd((v), _mm256_castsi256_pd(mask))

static inline FCV_TARGET double FCV_FN(hsum)(__m256d v)
{
    __m128d sum = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    sum = _mm_add_sd(sum, _mm_unpackhi_pd(sum, sum));
    return _mm_cvtsd_f64(sum);
}

static inline FCV_TARGET fcv_mask FCV_FN(lane_mask)(fc_index lo, fc_index hi)
{
    lo = lo < 0 ? 0 : (lo > FCV_LANES ? FCV_LANES : lo);
    hi = hi < lo ? lo : (hi > FCV_LANES ? FCV_LANES : hi);
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_and_si256(_mm256_cmpgt_epi64(lane, _mm256_set1_epi64x(lo - 1)),
                            _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), lane));
}
#endif
#define fcv_reduce FCV_FN(hsum)
#endif

/* Store lanes 0 .. count - 1 of v (1 <= count <= FCV_LANES). On AVX2 without a masked store: AMD's
 * vmaskmov stores are microcoded (tens of cycles each), plain narrower stores are not. */
static inline __attribute__((always_inline)) FCV_TARGET void FCV_FN(store_first)(real *ptr, fcv_vec v, int count)
{
#if FC_VEC_LEVEL == FC_VEC_AVX512
    fcv_store_mask(ptr, FCV_FN(lane_mask)(0, count), v);
#elif FC_IS_F32
    if (count == FCV_LANES) {
        _mm256_storeu_ps(ptr, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (count >= 4) {
        _mm_storeu_ps(ptr, part);
        part = _mm256_extractf128_ps(v, 1);
        ptr += 4;
        count -= 4;
    }
    if (count >= 2) {
        _mm_storel_pi((__m64 *)ptr, part);
        part = _mm_movehl_ps(part, part);
        ptr += 2;
        count -= 2;
    }
    if (count >= 1)
        _mm_store_ss(ptr, part);
#else
    if (count == FCV_LANES) {
        _mm256_storeu_pd(ptr, v);
        return;
    }
    __m128d part = _mm256_castpd256_pd128(v);
    if (count >= 2) {
        _mm_storeu_pd(ptr, part);
        part = _mm256_extractf128_pd(v, 1);
        ptr += 2;
        count -= 2;
    }
    if (count >= 1)
        _mm_store_sd(ptr, part);
#endif
}


#if FC_IS_F32 && FC_VEC_LEVEL == FC_VEC_AVX512
#define fcv_loadu _mm512_loadu_ps
#define fcv_storeu _mm512_storeu_ps
#elif FC_VEC_LEVEL == FC_VEC_AVX512
#define fcv_loadu _mm512_loadu_pd
#define fcv_storeu _mm512_storeu_pd
#elif FC_IS_F32
#define fcv_loadu _mm256_loadu_ps
#define fcv_storeu _mm256_storeu_ps
#else
#define fcv_loadu _mm256_loadu_pd
#define fcv_storeu _mm256_storeu_pd
#endif
/* Lanes rem .. rem + FCV_LANES - 1 of the concatenation lo:hi (lane 0 of lo first), 0 <= rem < FCV_LANES:
 * the vector an unaligned load `rem` elements past lo's address would give, made with in-register
 * shuffles from two loads. rem must fold to a constant (it does in unrolled loops), so each case is one
 * immediate shuffle. */
#define FCV_SHIFT_CASES4(first, expr) FCV_SHIFT_CASE(first, expr) FCV_SHIFT_CASE(first + 1, expr) \
    FCV_SHIFT_CASE(first + 2, expr) FCV_SHIFT_CASE(first + 3, expr)
#define FCV_SHIFT_CASE(n, expr) case n: return expr(n);
static inline __attribute__((always_inline)) FCV_TARGET fcv_vec FCV_FN(shifted)(fcv_vec lo, fcv_vec hi, const int rem)
{
#if FC_VEC_LEVEL == FC_VEC_AVX512 && FC_IS_F32
#define FCV_ALIGNR(n) _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), n))
    switch (rem) {
    FCV_SHIFT_CASES4(1, FCV_ALIGNR) FCV_SHIFT_CASES4(5, FCV_ALIGNR) FCV_SHIFT_CASES4(9, FCV_ALIGNR)
    FCV_SHIFT_CASE(13, FCV_ALIGNR) FCV_SHIFT_CASE(14, FCV_ALIGNR) FCV_SHIFT_CASE(15, FCV_ALIGNR)
    default: return lo;
    }
#elif FC_VEC_LEVEL == FC_VEC_AVX512
#define FCV_ALIGNR(n) _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(hi), _mm512_castpd_si512(lo), n))
    switch (rem) {
    FCV_SHIFT_CASES4(1, FCV_ALIGNR) FCV_SHIFT_CASE(5, FCV_ALIGNR) FCV_SHIFT_CASE(6, FCV_ALIGNR)
    FCV_SHIFT_CASE(7, FCV_ALIGNR)
    default: return lo;
    }
#elif FC_IS_F32
    /* AVX2 shifts bytes within 128-bit halves only: mid = (upper half of lo, lower half of hi) first */
    const __m256 mid = _mm256_permute2f128_ps(lo, hi, 0x21);
#define FCV_ALIGNR(n) _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(mid), _mm256_castps_si256(lo), 4 * (n)))
#define FCV_ALIGNR_HI(n) _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(hi), _mm256_castps_si256(mid), 4 * ((n) - 4)))
    switch (rem) {
    FCV_SHIFT_CASE(1, FCV_ALIGNR) FCV_SHIFT_CASE(2, FCV_ALIGNR) FCV_SHIFT_CASE(3, FCV_ALIGNR)
    case 4: return mid;
    FCV_SHIFT_CASE(5, FCV_ALIGNR_HI) FCV_SHIFT_CASE(6, FCV_ALIGNR_HI) FCV_SHIFT_CASE(7, FCV_ALIGNR_HI)
    default: return lo;
    }
#undef FCV_ALIGNR_HI
#else
    const __m256d mid = _mm256_permute2f128_pd(lo, hi, 0x21);
    switch (rem) {
    case 1: return _mm256_shuffle_pd(lo, mid, 5);
    case 2: return mid;
    case 3: return _mm256_shuffle_pd(mid, hi, 5);
    default: return lo;
    }
#endif
#ifdef FCV_ALIGNR
#undef FCV_ALIGNR
#endif
}
#undef FCV_SHIFT_CASE
#undef FCV_SHIFT_CASES4

/* Transpose the FCV_LANES x FCV_LANES matrix whose row q is rows[q], in place (lane c of rows[q] becomes
 * lane q of rows[c]), with in-register shuffles: unpacks within 128-bit chunks, then moves of whole
 * chunks. Rows that are constant zero fold away. */
static inline __attribute__((always_inline)) FCV_TARGET void FCV_FN(transpose)(fcv_vec *rows)
{
#if FC_VEC_LEVEL == FC_VEC_AVX512 && FC_IS_F32
    __m512 pair[16], quad[16];
    for (int q = 0; q < 16; q += 2) {
        pair[q] = _mm512_unpacklo_ps(rows[q], rows[q + 1]);
        pair[q + 1] = _mm512_unpackhi_ps(rows[q], rows[q + 1]);
    }
    /* quad[4g + m], 128-bit chunk l: column 4l + m of rows 4g .. 4g + 3 */
    for (int g = 0; g < 16; g += 4) {
        quad[g] = _mm512_shuffle_ps(pair[g], pair[g + 2], 0x44);
        quad[g + 1] = _mm512_shuffle_ps(pair[g], pair[g + 2], 0xEE);
        quad[g + 2] = _mm512_shuffle_ps(pair[g + 1], pair[g + 3], 0x44);
        quad[g + 3] = _mm512_shuffle_ps(pair[g + 1], pair[g + 3], 0xEE);
    }
    for (int m = 0; m < 4; m++) {
        const __m512 even01 = _mm512_shuffle_f32x4(quad[m], quad[4 + m], 0x88);
        const __m512 odd01 = _mm512_shuffle_f32x4(quad[m], quad[4 + m], 0xDD);
        const __m512 even23 = _mm512_shuffle_f32x4(quad[8 + m], quad[12 + m], 0x88);
        const __m512 odd23 = _mm512_shuffle_f32x4(quad[8 + m], quad[12 + m], 0xDD);
        rows[m] = _mm512_shuffle_f32x4(even01, even23, 0x88);
        rows[8 + m] = _mm512_shuffle_f32x4(even01, even23, 0xDD);
        rows[4 + m] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
        rows[12 + m] = _mm512_shuffle_f32x4(odd01, odd23, 0xDD);
    }
#elif FC_VEC_LEVEL == FC_VEC_AVX512
    __m512d pair[8];
    /* pair[2g + m], 128-bit chunk l: column 2l + m of rows 2g, 2g + 1 */
    for (int q = 0; q < 8; q += 2) {
        pair[q] = _mm512_unpacklo_pd(rows[q], rows[q + 1]);
        pair[q + 1] = _mm512_unpackhi_pd(rows[q], rows[q + 1]);
    }
    for (int m = 0; m < 2; m++) {
        const __m512d even01 = _mm512_shuffle_f64x2(pair[m], pair[2 + m], 0x88);
        const __m512d odd01 = _mm512_shuffle_f64x2(pair[m], pair[2 + m], 0xDD);
        const __m512d even23 = _mm512_shuffle_f64x2(pair[4 + m], pair[6 + m], 0x88);
        const __m512d odd23 = _mm512_shuffle_f64x2(pair[4 + m], pair[6 + m], 0xDD);
        rows[m] = _mm512_shuffle_f64x2(even01, even23, 0x88);
        rows[4 + m] = _mm512_shuffle_f64x2(even01, even23, 0xDD);
        rows[2 + m] = _mm512_shuffle_f64x2(odd01, odd23, 0x88);
        rows[6 + m] = _mm512_shuffle_f64x2(odd01, odd23, 0xDD);
    }
#elif FC_IS_F32
    __m256 pair[8], quad[8];
    for (int q = 0; q < 8; q += 2) {
        pair[q] = _mm256_unpacklo_ps(rows[q], rows[q + 1]);
        pair[q + 1] = _mm256_unpackhi_ps(rows[q], rows[q + 1]);
    }
    for (int g = 0; g < 8; g += 4) {
        quad[g] = _mm256_shuffle_ps(pair[g], pair[g + 2], 0x44);
        quad[g + 1] = _mm256_shuffle_ps(pair[g], pair[g + 2], 0xEE);
        quad[g + 2] = _mm256_shuffle_ps(pair[g + 1], pair[g + 3], 0x44);
        quad[g + 3] = _mm256_shuffle_ps(pair[g + 1], pair[g + 3], 0xEE);
    }
    for (int m = 0; m < 4; m++) {
        rows[m] = _mm256_permute2f128_ps(quad[m], quad[4 + m], 0x20);
        rows[4 + m] = _mm256_permute2f128_ps(quad[m], quad[4 + m], 0x31);
    }
#else
    const __m256d pair0 = _mm256_unpacklo_pd(rows[0], rows[1]), pair1 = _mm256_unpackhi_pd(rows[0], rows[1]);
    const __m256d pair2 = _mm256_unpacklo_pd(rows[2], rows[3]), pair3 = _mm256_unpackhi_pd(rows[2], rows[3]);
    rows[0] = _mm256_permute2f128_pd(pair0, pair2, 0x20);
    rows[2] = _mm256_permute2f128_pd(pair0, pair2, 0x31);
    rows[1] = _mm256_permute2f128_pd(pair1, pair3, 0x20);
    rows[3] = _mm256_permute2f128_pd(pair1, pair3, 0x31);
#endif
}

/* Vectors loaded per output column vector to build the shifted x vectors of taps 0 .. S - 1. */
#define FCV_SHIFT_LOADS(taps_w) (((taps_w) - 1) / FCV_LANES + 2)

#endif /* FC_VEC_LEVEL */
