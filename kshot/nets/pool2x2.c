/* 2x2, stride-2 max-pool over channels-last maps [N, H, W, C] (H and W even), float32 or bfloat16.

PyTorch's CPU pool keeps an int64 index per output (as large as a bf16 input map), and its
backward pass zero-fills the input gradient and then scatters into it. Here the forward pass
keeps one byte per output (which of the four pixels won), and the backward pass writes every
input-gradient element once. Ties go to the first pixel in row-major order and a NaN wins, as in
PyTorch, so the results are bit-identical (tests/test_pool2x2.py).

Three kernels, each over a range of output rows (N*H/2 rows in all):
  pool:    x -> out, choice
  scatter: g [N, H/2, W/2, C], choice -> gx [N, H, W, C]   (the pool's input gradient)
  gather:  gx, choice -> g                                  (the scatter's gradient: pool by choice)
scatter and gather move bits, so they take 2- or 4-byte elements whatever the float type. */

#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t w, c; /* input width, channels */
} shape_t;

static inline float bf16_load(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t bf16_store(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }
static inline float f32_load(float v) { return v; }
static inline float f32_store(float v) { return v; }

/* take = v > m or v is NaN: PyTorch's rule, written without branches so that the loop vectorises */
#define POOL_ROWS(NAME, T, LOAD, STORE) \
static void NAME(const void *src, void *dst, uint8_t *restrict choice, shape_t s, int64_t r0, int64_t r1) { \
    const T *restrict x = src; T *restrict out = dst; \
    int64_t wo = s.w / 2, c = s.c; \
    for (int64_t r = r0; r < r1; r++) { \
        const T *row0 = x + 2 * r * s.w * c, *row1 = row0 + s.w * c; \
        for (int64_t j = 0; j < wo; j++) { \
            const T *p0 = row0 + 2 * j * c, *p1 = p0 + c, *p2 = row1 + 2 * j * c, *p3 = p2 + c; \
            T *o = out + (r * wo + j) * c; uint8_t *k = choice + (r * wo + j) * c; \
            for (int64_t ch = 0; ch < c; ch++) { \
                float m = LOAD(p0[ch]), v; int best = 0, take; \
                v = LOAD(p1[ch]); take = (v > m) | (v != v); m = take ? v : m; best = take ? 1 : best; \
                v = LOAD(p2[ch]); take = (v > m) | (v != v); m = take ? v : m; best = take ? 2 : best; \
                v = LOAD(p3[ch]); take = (v > m) | (v != v); m = take ? v : m; best = take ? 3 : best; \
                o[ch] = STORE(m); k[ch] = (uint8_t)best; \
            } \
        } \
    } \
}
POOL_ROWS(pool_rows_f32, float, f32_load, f32_store)
POOL_ROWS(pool_rows_bf16, uint16_t, bf16_load, bf16_store)

#define SCATTER_ROWS(NAME, T) \
static void NAME(const void *src, void *dst, uint8_t *restrict choice, shape_t s, int64_t r0, int64_t r1) { \
    const T *restrict g = src; T *restrict gx = dst; \
    int64_t wo = s.w / 2, c = s.c; \
    for (int64_t r = r0; r < r1; r++) { \
        T *row0 = gx + 2 * r * s.w * c, *row1 = row0 + s.w * c; \
        for (int64_t j = 0; j < wo; j++) { \
            T *restrict p0 = row0 + 2 * j * c, *restrict p1 = p0 + c; \
            T *restrict p2 = row1 + 2 * j * c, *restrict p3 = p2 + c; \
            const T *restrict v = g + (r * wo + j) * c; const uint8_t *restrict k = choice + (r * wo + j) * c; \
            for (int64_t ch = 0; ch < c; ch++) { \
                T value = v[ch]; uint8_t best = k[ch]; \
                p0[ch] = best == 0 ? value : 0; p1[ch] = best == 1 ? value : 0; \
                p2[ch] = best == 2 ? value : 0; p3[ch] = best == 3 ? value : 0; \
            } \
        } \
    } \
}
SCATTER_ROWS(scatter_rows_16, uint16_t)
SCATTER_ROWS(scatter_rows_32, uint32_t)

#define GATHER_ROWS(NAME, T) \
static void NAME(const void *src, void *dst, uint8_t *restrict choice, shape_t s, int64_t r0, int64_t r1) { \
    const T *restrict gx = src; T *restrict g = dst; \
    int64_t wo = s.w / 2, c = s.c; \
    for (int64_t r = r0; r < r1; r++) { \
        const T *row0 = gx + 2 * r * s.w * c, *row1 = row0 + s.w * c; \
        for (int64_t j = 0; j < wo; j++) { \
            const T *p0 = row0 + 2 * j * c, *p1 = p0 + c, *p2 = row1 + 2 * j * c, *p3 = p2 + c; \
            T *o = g + (r * wo + j) * c; const uint8_t *k = choice + (r * wo + j) * c; \
            for (int64_t ch = 0; ch < c; ch++) { \
                T a = k[ch] == 0 ? p0[ch] : p1[ch], b = k[ch] == 2 ? p2[ch] : p3[ch]; \
                o[ch] = k[ch] < 2 ? a : b; \
            } \
        } \
    } \
}
GATHER_ROWS(gather_rows_16, uint16_t)
GATHER_ROWS(gather_rows_32, uint32_t)

typedef void (*rows_fn)(const void *, void *, uint8_t *, shape_t, int64_t, int64_t);

/* Split the output rows over `threads` OpenMP threads. After `import torch` the process's OpenMP
   runtime is torch's own (same soname), so these are torch's worker threads, not a second pool
   competing with them for the cores. Built without OpenMP, the pragma is ignored. */
static void run_rows(rows_fn fn, const void *src, void *dst, uint8_t *choice, int64_t rows, int64_t w, int64_t c,
                     int threads) {
    shape_t s = {w, c};
    if (threads < 1) threads = 1;
    if (threads > rows) threads = (int)rows;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) fn(src, dst, choice, s, rows * t / threads, rows * (t + 1) / threads);
}

/* Entry points (ctypes). rows = N*H/2; element_size 2 (bfloat16) or 4 (float32). */
void kshot_pool2x2(const void *x, void *out, uint8_t *choice, int64_t rows, int64_t w, int64_t c, int element_size,
                   int threads) {
    run_rows(element_size == 2 ? pool_rows_bf16 : pool_rows_f32, x, out, choice, rows, w, c, threads);
}

void kshot_scatter2x2(const void *g, uint8_t *choice, void *gx, int64_t rows, int64_t w, int64_t c, int element_size,
                      int threads) {
    run_rows(element_size == 2 ? scatter_rows_16 : scatter_rows_32, g, gx, choice, rows, w, c, threads);
}

void kshot_gather2x2(const void *gx, uint8_t *choice, void *g, int64_t rows, int64_t w, int64_t c, int element_size,
                     int threads) {
    run_rows(element_size == 2 ? gather_rows_16 : gather_rows_32, gx, g, choice, rows, w, c, threads);
}
