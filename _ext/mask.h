/* WebSocket masking kernels (RFC 6455 §5.3): dst[i] = src[i] ^ key[(phase + i) % 4].
 *
 * One kernel per instruction set — wide words (portable), SSE2, AVX2, AVX-512 — each handling
 * any length and alignment; the best one the CPU supports is chosen once, at import, and any
 * available one can be forced (tests cover them all).  dst may equal src (in place); other
 * overlaps are not supported.
 *
 * Every kernel also returns whether any *output* byte has its high bit set, so a text payload
 * is unmasked and checked for pure ASCII in the same pass.
 */
#ifndef WS2FAST_MASK_H
#define WS2FAST_MASK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    WS2FAST_MASK_WORD = 0,
    WS2FAST_MASK_SSE2 = 1,
    WS2FAST_MASK_AVX2 = 2,
    WS2FAST_MASK_AVX512 = 3,
    WS2FAST_MASK_KERNELS = 4
};

/* Unmask (or mask) n bytes with the currently selected kernel; returns nonzero when an
 * output byte is >= 0x80. */
int ws2fast_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase);

/* Run one specific kernel (which must be available). */
int ws2fast_mask_with(int kernel, uint8_t *dst, const uint8_t *src, size_t n,
                      const uint8_t key[4], size_t phase);

/* Small payloads (a control frame, a short message), key phase 0: inline, no dispatch.
 * Same result as ws2fast_mask. */
static inline int ws2fast_mask_small(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    uint64_t k64, w, acc = 0;
    size_t i = 0;
    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
        acc |= w;
    }
    for (; i < n; i++) {
        uint8_t x = src[i] ^ key[i & 3];
        dst[i] = x;
        acc |= x;
    }
    return (acc & 0x8080808080808080ull) != 0;
}

int ws2fast_mask_available(int kernel);    /* compiled in and supported by this CPU and OS */
int ws2fast_mask_select(int kernel);       /* 0, or -1 when not available */
int ws2fast_mask_selected(void);
int ws2fast_mask_best(void);               /* the kernel chosen at import */

#endif
