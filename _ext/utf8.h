/* Incremental UTF-8 validation (RFC 3629 §4), for WebSocket text (RFC 6455 §8.1).
 *
 * A small DFA over byte classes.  It rejects at the first byte after which no continuation
 * could make the sequence valid (overlong forms, surrogates, code points above U+10FFFF), so
 * a message split into fragments or reads fails as early as the bytes allow.  The state is
 * carried between calls; WS2FAST_UTF8_ACCEPT at the end of a message means it was complete.
 * Runs of ASCII are skipped 8 bytes at a time.
 */
#ifndef WS2FAST_UTF8_H
#define WS2FAST_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    WS2FAST_UTF8_ACCEPT = 0,
    WS2FAST_UTF8_REJECT = 1
    /* 2..8: inside a multi-byte sequence (see the table) */
};

/* Byte classes:
 *  0: 00..7F    1: 80..8F    2: 90..9F    3: A0..BF    4: C0..C1, F5..FF (never valid)
 *  5: C2..DF    6: E0        7: E1..EC, EE..EF          8: ED
 *  9: F0       10: F1..F3   11: F4 */
static const uint8_t ws2fast_utf8_class[256] = {
    /* 00..7F */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    /* 80..8F, 90..9F, A0..BF */
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,
    /* C0..DF */
    4,4,5,5,5,5,5,5,5,5,5,5,5,5,5,5, 5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    /* E0..EF */
    6,7,7,7,7,7,7,7,7,7,7,7,7,8,7,7,
    /* F0..FF */
    9,10,10,10,11,4,4,4,4,4,4,4,4,4,4,4,
};

/* States: 0 accept, 1 reject, 2 need 1 more (80..BF), 3 need 2, 4 need 3,
 * 5 after E0 (next A0..BF), 6 after ED (next 80..9F), 7 after F0 (next 90..BF),
 * 8 after F4 (next 80..8F). */
static const uint8_t ws2fast_utf8_next[9][12] = {
    /*        0  1  2  3  4  5  6  7  8  9 10 11 */
    /* 0 */ { 0, 1, 1, 1, 1, 2, 5, 3, 6, 7, 4, 8 },
    /* 1 */ { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 2 */ { 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 3 */ { 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 4 */ { 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 5 */ { 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 6 */ { 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 7 */ { 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 8 */ { 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
};

/* Feed n bytes; returns the new state (WS2FAST_UTF8_REJECT is final and returned at once). */
static inline int ws2fast_utf8_feed(int state, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (state == WS2FAST_UTF8_ACCEPT) {
            uint64_t w;
            while (i + 8 <= n) {
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            while (i < n && s[i] < 0x80)
                i++;
            if (i == n)
                break;
        }
        state = ws2fast_utf8_next[state][ws2fast_utf8_class[s[i]]];
        if (state == WS2FAST_UTF8_REJECT)
            return state;
        i++;
    }
    return state;
}

#endif
