/* WebSocket masking kernels; see mask.h.
 *
 * The SIMD kernels are compiled with per-function target attributes, so this file builds with
 * the default flags and the CPU is asked at run time which of them may run.  Loads and stores
 * are unaligned (no alignment is assumed of Python buffers); each kernel runs its widest loop
 * while it can and finishes with narrower steps, so every length is handled by every kernel.
 */
#include "mask.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define WS2FAST_X86 1
#include <immintrin.h>
#else
#define WS2FAST_X86 0
#endif

/* The key rotated to start at `phase`, as the 4 bytes that XOR the next 4 payload bytes. */
static inline uint32_t rotated_key(const uint8_t key[4], size_t phase)
{
    uint8_t k[4];
    uint32_t pattern;
    for (int i = 0; i < 4; i++)
        k[i] = key[(phase + (size_t)i) & 3];
    memcpy(&pattern, k, 4);
    return pattern;
}

/* Wide words: 32 bytes per loop turn, then the small-payload code (mask.h) for the rest.
 * Also finishes the SIMD kernels. */
static int mask_word_from(uint8_t *dst, const uint8_t *src, size_t n, uint32_t pattern, uint64_t acc)
{
    uint64_t k64 = ((uint64_t)pattern << 32) | pattern;
    uint64_t a, b, c, d;
    uint8_t k[4];
    size_t i = 0;
    memcpy(k, &pattern, 4);
    for (; i + 32 <= n; i += 32) {
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= k64; b ^= k64; c ^= k64; d ^= k64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
        acc |= a | b | c | d;
    }
    /* i is a multiple of 4, so the rest starts at key phase 0 of the rotated key. */
    return ws2fast_mask_small(dst + i, src + i, n - i, k) | ((acc & 0x8080808080808080ull) != 0);
}

/* Long payloads: mask a few head bytes so that the vector stores that follow are aligned to
 * `width` (the loads stay unaligned); measured to help when the destination is misaligned.
 * Returns whether the head had non-ASCII output. */
static inline int align_stores(uint8_t **dst, const uint8_t **src, size_t *n, uint32_t *pattern,
                               size_t width)
{
    size_t head = (width - ((uintptr_t)*dst & (width - 1))) & (width - 1);
    int nonascii;
    if (*n < 1024 || head == 0)
        return 0;
    nonascii = mask_word_from(*dst, *src, head, *pattern, 0);
    *dst += head;
    *src += head;
    *n -= head;
    {
        uint8_t k[4];               /* the pattern that continues after the head */
        memcpy(k, pattern, 4);
        *pattern = rotated_key(k, head);
    }
    return nonascii;
}

static int mask_word(uint8_t *dst, const uint8_t *src, size_t n, uint32_t pattern)
{
    return mask_word_from(dst, src, n, pattern, 0);
}

#if WS2FAST_X86

__attribute__((target("sse2")))
static int mask_sse2(uint8_t *dst, const uint8_t *src, size_t n, uint32_t pattern)
{
    int head_nonascii = align_stores(&dst, &src, &n, &pattern, 16);
    const __m128i k = _mm_set1_epi32((int)pattern);
    __m128i acc = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), k);
        __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 16)), k);
        __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 32)), k);
        __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 48)), k);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(dst + i + 16), b);
        _mm_storeu_si128((__m128i *)(dst + i + 32), c);
        _mm_storeu_si128((__m128i *)(dst + i + 48), d);
        acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), k);
        _mm_storeu_si128((__m128i *)(dst + i), a);
        acc = _mm_or_si128(acc, a);
    }
    return head_nonascii | mask_word_from(dst + i, src + i, n - i, pattern,
                                          (uint64_t)(_mm_movemask_epi8(acc) != 0) << 7);
}

__attribute__((target("avx2")))
static int mask_avx2(uint8_t *dst, const uint8_t *src, size_t n, uint32_t pattern)
{
    int head_nonascii = align_stores(&dst, &src, &n, &pattern, 32);
    const __m256i k = _mm256_set1_epi32((int)pattern);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), k);
        __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 32)), k);
        __m256i c = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 64)), k);
        __m256i d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 96)), k);
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        _mm256_storeu_si256((__m256i *)(dst + i + 32), b);
        _mm256_storeu_si256((__m256i *)(dst + i + 64), c);
        _mm256_storeu_si256((__m256i *)(dst + i + 96), d);
        acc = _mm256_or_si256(acc, _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), k);
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        acc = _mm256_or_si256(acc, a);
    }
    return head_nonascii | mask_word_from(dst + i, src + i, n - i, pattern,
                                          (uint64_t)(_mm256_movemask_epi8(acc) != 0) << 7);
}

__attribute__((target("avx512f")))
static int mask_avx512(uint8_t *dst, const uint8_t *src, size_t n, uint32_t pattern)
{
    int head_nonascii = align_stores(&dst, &src, &n, &pattern, 64);
    const __m512i k = _mm512_set1_epi32((int)pattern);
    const __m512i high = _mm512_set1_epi32((int)0x80808080u);
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), k);
        __m512i b = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 64)), k);
        __m512i c = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 128)), k);
        __m512i d = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 192)), k);
        _mm512_storeu_si512((void *)(dst + i), a);
        _mm512_storeu_si512((void *)(dst + i + 64), b);
        _mm512_storeu_si512((void *)(dst + i + 128), c);
        _mm512_storeu_si512((void *)(dst + i + 192), d);
        acc = _mm512_or_si512(acc, _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d)));
    }
    for (; i + 64 <= n; i += 64) {
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), k);
        _mm512_storeu_si512((void *)(dst + i), a);
        acc = _mm512_or_si512(acc, a);
    }
    return head_nonascii | mask_word_from(dst + i, src + i, n - i, pattern,
                                          (uint64_t)(_mm512_test_epi32_mask(acc, high) != 0) << 7);
}

#endif /* WS2FAST_X86 */

typedef int (*kernel_fn)(uint8_t *, const uint8_t *, size_t, uint32_t);

static kernel_fn kernels[WS2FAST_MASK_KERNELS] = {
    mask_word,
#if WS2FAST_X86
    mask_sse2, mask_avx2, mask_avx512,
#else
    NULL, NULL, NULL,
#endif
};

static int probed = 0;
static int available[WS2FAST_MASK_KERNELS];
static int best = WS2FAST_MASK_WORD;
static kernel_fn selected_fn = mask_word;
static int selected = WS2FAST_MASK_WORD;

static void probe(void)
{
    if (probed)
        return;
    available[WS2FAST_MASK_WORD] = 1;
#if WS2FAST_X86
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV). */
    available[WS2FAST_MASK_SSE2] = __builtin_cpu_supports("sse2") ? 1 : 0;
    available[WS2FAST_MASK_AVX2] = __builtin_cpu_supports("avx2") ? 1 : 0;
    available[WS2FAST_MASK_AVX512] = __builtin_cpu_supports("avx512f") ? 1 : 0;
#endif
    /* AVX2 is preferred to AVX-512: masking is memory-bound, both reach the copy speed, and
     * 512-bit instructions lower the clock on several CPUs (measured in bench/bench_mask.py). */
    if (available[WS2FAST_MASK_AVX2])
        best = WS2FAST_MASK_AVX2;
    else if (available[WS2FAST_MASK_SSE2])
        best = WS2FAST_MASK_SSE2;
    selected = best;
    selected_fn = kernels[best];
    probed = 1;
}

int ws2fast_mask_available(int kernel)
{
    probe();
    return kernel >= 0 && kernel < WS2FAST_MASK_KERNELS && available[kernel];
}

int ws2fast_mask_select(int kernel)
{
    if (!ws2fast_mask_available(kernel))
        return -1;
    selected = kernel;
    selected_fn = kernels[kernel];
    return 0;
}

int ws2fast_mask_selected(void)
{
    probe();
    return selected;
}

int ws2fast_mask_best(void)
{
    probe();
    return best;
}

int ws2fast_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
{
    return selected_fn(dst, src, n, rotated_key(key, phase));
}

int ws2fast_mask_with(int kernel, uint8_t *dst, const uint8_t *src, size_t n,
                      const uint8_t key[4], size_t phase)
{
    return kernels[kernel](dst, src, n, rotated_key(key, phase));
}
