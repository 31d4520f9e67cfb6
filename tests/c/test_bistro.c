/*
 * The C test of libbistro: writes a delta, reads it back, checks the page
 * selection test vectors (tests/vectors/pages.json, through a header that
 * scripts/test-ffi.sh generates), the weight conversion, and the error paths
 * (NULL arguments, truncated input, wrong sizes, outputs untouched on failure).
 *
 * Built by scripts/test-ffi.sh with `cc -std=c11 -Wall -Wextra -Werror`
 * against the shared library, against the static library with
 * -fsanitize=address,undefined, and run once under valgrind.
 * Prints "c: N passed, M failed" and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bistro.h"
#include "page_vectors.h"

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        checks++;                                                                      \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define EXPECT(expr, expected)                                                         \
    do {                                                                               \
        bistro_status got_ = (expr);                                                   \
        checks++;                                                                      \
        if (got_ != (bistro_status)(expected)) {                                       \
            char msg_[512];                                                            \
            bistro_last_error(msg_, sizeof msg_);                                      \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__,     \
                    __LINE__, #expr, bistro_status_name(got_),                         \
                    bistro_status_name(expected), msg_);                               \
        }                                                                              \
    } while (0)

#define OK(expr) EXPECT(expr, BISTRO_OK)

static const uint8_t SEED[BISTRO_SEED_LEN] = {
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
};

/* The last error message contains `needle`. */
static int last_error_mentions(const char *needle) {
    char msg[512];
    size_t len = bistro_last_error(msg, sizeof msg);
    return len > 0 && strstr(msg, needle) != NULL;
}

static bistro_delta_header make_header(void) {
    bistro_delta_header h;
    memset(&h, 0, sizeof h);
    memset(h.base_revision, 3, sizeof h.base_revision);
    h.block = 4000123;
    h.uid = 17;
    OK(bistro_public_key_from_seed(SEED, h.hotkey));
    return h;
}

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((int)((i * 37) % 101) - 50) * scale;
    }
}

static void test_versions(void) {
    CHECK(bistro_abi_version() == BISTRO_ABI_VERSION);
    CHECK(strlen(bistro_version()) > 0);
    CHECK(strcmp(bistro_status_name(BISTRO_OK), "BISTRO_OK") == 0);
    CHECK(strcmp(bistro_status_name(BISTRO_ERR_CORRUPT), "BISTRO_ERR_CORRUPT") == 0);
    CHECK(strcmp(bistro_status_name(12345), "BISTRO_UNKNOWN_STATUS") == 0);
}

/* Writes a three-tensor delta (dense f32, top-k f32 with error feedback,
 * int8 blocks), signs it, reads it back and checks every value. */
static void test_round_trip(void) {
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = NULL;
    OK(bistro_delta_writer_new(&h, NULL, &w));
    CHECK(w != NULL);

    float a[6] = {0.5f, -1.0f, 0.0f, 2.0f, 0.25f, -0.125f};
    const uint64_t a_shape[2] = {2, 3};
    bistro_encoding dense = {.kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_F32};
    OK(bistro_delta_writer_add_tensor(w, "layers.0.weight", a_shape, 2, a, 6, &dense, NULL));

    float b[64], residual[64];
    fill(b, 64, 0.01f);
    memset(residual, 0, sizeof residual);
    const uint64_t b_shape[1] = {64};
    bistro_encoding topk = {.kind = BISTRO_ENCODING_TOP_K, .dtype = BISTRO_DTYPE_F32, .k = 8};
    OK(bistro_delta_writer_add_tensor(w, "layers.0.bias", b_shape, 1, b, 64, &topk, residual));

    float c[100];
    fill(c, 100, 0.003f);
    const uint64_t c_shape[2] = {10, 10};
    bistro_encoding int8 = {
        .kind = BISTRO_ENCODING_INT8_BLOCK, .dtype = BISTRO_DTYPE_I8, .block_size = 16};
    OK(bistro_delta_writer_add_tensor(w, "embed", c_shape, 2, c, 100, &int8, NULL));

    uint64_t written = 0;
    OK(bistro_delta_writer_bytes_written(w, &written));
    CHECK(written > 128);

    uint8_t digest[BISTRO_DIGEST_LEN];
    bistro_buffer *buf = NULL;
    OK(bistro_delta_writer_finish(w, SEED, digest, &buf));
    /* Finished writers refuse everything but free. */
    EXPECT(bistro_delta_writer_add_tensor(w, "late", b_shape, 1, b, 64, &dense, NULL),
           BISTRO_ERR_INVALID_STATE);
    bistro_delta_writer_free(w);
    CHECK(buf != NULL);
    CHECK(bistro_buffer_len(buf) > written);

    bistro_delta_reader *r = NULL;
    OK(bistro_delta_reader_open(bistro_buffer_data(buf), bistro_buffer_len(buf), NULL, &r));
    /* The reader copied the bytes: the buffer can go now. */
    bistro_buffer_free(buf);
    if (r == NULL) {
        return;
    }

    size_t count = 0;
    OK(bistro_delta_reader_tensor_count(r, &count));
    CHECK(count == 3);
    uint64_t total = 0;
    OK(bistro_delta_reader_total_elements(r, &total));
    CHECK(total == 170);
    bistro_delta_header back;
    OK(bistro_delta_reader_header(r, &back));
    CHECK(back.block == h.block && back.uid == h.uid);
    CHECK(memcmp(back.hotkey, h.hotkey, BISTRO_PUBLIC_KEY_LEN) == 0);
    CHECK(memcmp(back.base_revision, h.base_revision, BISTRO_DIGEST_LEN) == 0);
    uint8_t digest_back[BISTRO_DIGEST_LEN];
    OK(bistro_delta_reader_digest(r, digest_back));
    CHECK(memcmp(digest, digest_back, BISTRO_DIGEST_LEN) == 0);
    OK(bistro_delta_reader_verify_signature(r));
    OK(bistro_delta_reader_check_finite(r));

    const char *names[3] = {"layers.0.weight", "layers.0.bias", "embed"};
    const uint32_t kinds[3] = {BISTRO_ENCODING_DENSE, BISTRO_ENCODING_TOP_K,
                               BISTRO_ENCODING_INT8_BLOCK};
    const uint64_t counts[3] = {6, 64, 100};
    for (size_t i = 0; i < 3; i++) {
        bistro_tensor_info info;
        OK(bistro_delta_reader_tensor_info(r, i, &info));
        CHECK(strcmp(info.name, names[i]) == 0);
        CHECK(info.name_len == strlen(names[i]));
        CHECK(info.encoding.kind == kinds[i]);
        CHECK(info.element_count == counts[i]);
        size_t index = 99;
        OK(bistro_delta_reader_find(r, names[i], &index));
        CHECK(index == i);
    }
    bistro_tensor_info info;
    OK(bistro_delta_reader_tensor_info(r, 0, &info));
    CHECK(info.rank == 2 && info.shape[0] == 2 && info.shape[1] == 3);
    OK(bistro_delta_reader_tensor_info(r, 1, &info));
    CHECK(info.encoding.k == 8 && info.encoding.dtype == BISTRO_DTYPE_F32);
    OK(bistro_delta_reader_tensor_info(r, 2, &info));
    CHECK(info.encoding.block_size == 16 && info.encoding.dtype == BISTRO_DTYPE_I8);

    /* Dense f32 applies exactly: w + alpha * a. */
    float weights[6] = {1, 1, 1, 1, 1, 1};
    OK(bistro_delta_reader_apply(r, 0, weights, 6, -2.0f));
    for (size_t i = 0; i < 6; i++) {
        CHECK(weights[i] == 1.0f + -2.0f * a[i]);
    }

    /* Top-k with error feedback: 8 values kept; kept + residual == input. */
    float decoded[100];
    OK(bistro_delta_reader_decode(r, 1, decoded, 64));
    int kept = 0;
    for (size_t i = 0; i < 64; i++) {
        kept += decoded[i] != 0.0f;
        CHECK(decoded[i] + residual[i] == b[i]);
    }
    CHECK(kept == 8);

    /* Int8 blocks: each value within half a quantization step of its block. */
    OK(bistro_delta_reader_decode(r, 2, decoded, 100));
    for (size_t block = 0; block < 100; block += 16) {
        float max = 0.0f;
        size_t end = block + 16 < 100 ? block + 16 : 100;
        for (size_t i = block; i < end; i++) {
            max = fabsf(c[i]) > max ? fabsf(c[i]) : max;
        }
        for (size_t i = block; i < end; i++) {
            CHECK(fabsf(decoded[i] - c[i]) <= max / 127.0f * 0.5f + 1e-7f);
        }
    }
    bistro_delta_reader_free(r);
}

/* Streams a delta to a file (atomic rename), memory-maps it back. */
static void test_file_round_trip(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/delta.bin", dir);
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = NULL;
    OK(bistro_delta_writer_new_file(path, &h, NULL, &w));
    CHECK(access(path, F_OK) != 0); /* nothing at the path until finished */
    float x[1000];
    fill(x, 1000, 0.001f);
    const uint64_t shape[1] = {1000};
    bistro_encoding bf16 = {.kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_BF16};
    OK(bistro_delta_writer_add_tensor(w, "w", shape, 1, x, 1000, &bf16, NULL));
    /* A file writer is finished with finish_file, not into memory. */
    bistro_buffer *buf = NULL;
    EXPECT(bistro_delta_writer_finish(w, NULL, NULL, &buf), BISTRO_ERR_INVALID_STATE);
    CHECK(buf == NULL);
    uint8_t digest[BISTRO_DIGEST_LEN];
    OK(bistro_delta_writer_finish_file(w, SEED, digest));
    bistro_delta_writer_free(w);
    CHECK(access(path, F_OK) == 0);

    bistro_delta_reader *r = NULL;
    OK(bistro_delta_reader_open_file(path, NULL, &r));
    if (r != NULL) {
        OK(bistro_delta_reader_verify_signature(r));
        uint8_t back[BISTRO_DIGEST_LEN];
        OK(bistro_delta_reader_digest(r, back));
        CHECK(memcmp(back, digest, BISTRO_DIGEST_LEN) == 0);
        float y[1000];
        memset(y, 0, sizeof y);
        OK(bistro_delta_reader_apply(r, 0, y, 1000, 1.0f));
        for (size_t i = 0; i < 1000; i++) {
            CHECK(fabsf(y[i] - x[i]) <= fabsf(x[i]) / 128.0f);
        }
        bistro_delta_reader_free(r);
    }

    /* A writer freed unfinished leaves nothing behind. */
    char other[4096];
    snprintf(other, sizeof other, "%s/abandoned.bin", dir);
    OK(bistro_delta_writer_new_file(other, &h, NULL, &w));
    OK(bistro_delta_writer_add_tensor(w, "w", shape, 1, x, 1000, &bf16, NULL));
    bistro_delta_writer_free(w);
    CHECK(access(other, F_OK) != 0);
    remove(path);
}

/* Signs an unsigned delta in place, as a miner with its hotkey seed would. */
static void test_sign_in_place(void) {
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = NULL;
    OK(bistro_delta_writer_new(&h, NULL, &w));
    float x[4] = {1, 2, 3, 4};
    const uint64_t shape[1] = {4};
    bistro_encoding f16 = {.kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_F16};
    OK(bistro_delta_writer_add_tensor(w, "x", shape, 1, x, 4, &f16, NULL));
    bistro_buffer *buf = NULL;
    OK(bistro_delta_writer_finish(w, NULL, NULL, &buf));
    bistro_delta_writer_free(w);
    if (buf == NULL) {
        return;
    }
    size_t len = bistro_buffer_len(buf);
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL);
    if (copy == NULL) {
        bistro_buffer_free(buf);
        return;
    }
    memcpy(copy, bistro_buffer_data(buf), len);
    bistro_buffer_free(buf);

    bistro_delta_reader *r = NULL;
    OK(bistro_delta_reader_open(copy, len, NULL, &r));
    EXPECT(bistro_delta_reader_verify_signature(r), BISTRO_ERR_BAD_SIGNATURE);
    bistro_delta_reader_free(r);

    uint8_t wrong[BISTRO_SEED_LEN];
    memset(wrong, 9, sizeof wrong);
    EXPECT(bistro_delta_sign(copy, len, wrong, NULL), BISTRO_ERR_INVALID_ARGUMENT);
    OK(bistro_delta_sign(copy, len, SEED, NULL));
    r = NULL;
    OK(bistro_delta_reader_open(copy, len, NULL, &r));
    OK(bistro_delta_reader_verify_signature(r));
    bistro_delta_reader_free(r);
    free(copy);
}

static void test_error_paths(void) {
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = (bistro_delta_writer *)0x1;

    /* NULL arguments: an error and a message, never a crash; outputs untouched. */
    EXPECT(bistro_delta_writer_new(NULL, NULL, &w), BISTRO_ERR_NULL_ARGUMENT);
    CHECK(w == (bistro_delta_writer *)0x1);
    CHECK(last_error_mentions("header"));
    CHECK(bistro_last_error_length() > 0);
    EXPECT(bistro_delta_writer_new(&h, NULL, NULL), BISTRO_ERR_NULL_ARGUMENT);
    EXPECT(bistro_delta_reader_tensor_count(NULL, NULL), BISTRO_ERR_NULL_ARGUMENT);
    EXPECT(bistro_pages_global(NULL, 0, NULL, NULL, 0), BISTRO_ERR_NULL_ARGUMENT);
    bistro_delta_writer_free(NULL);
    bistro_delta_reader_free(NULL);
    bistro_buffer_free(NULL);
    CHECK(bistro_buffer_len(NULL) == 0);

    /* Success clears the message. */
    w = NULL;
    OK(bistro_delta_writer_new(&h, NULL, &w));
    CHECK(bistro_last_error_length() == 0);

    /* Wrong sizes and bad encodings are rejected and change nothing. */
    float x[12];
    fill(x, 12, 0.1f);
    float residual[12] = {0};
    const uint64_t shape[2] = {3, 5}; /* 15 elements, but 12 given */
    bistro_encoding dense = {.kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_F32};
    EXPECT(bistro_delta_writer_add_tensor(w, "t", shape, 2, x, 12, &dense, residual),
           BISTRO_ERR_INVALID_ARGUMENT);
    const uint64_t good_shape[2] = {3, 4};
    bistro_encoding bad_kind = {.kind = 99, .dtype = BISTRO_DTYPE_F32};
    EXPECT(bistro_delta_writer_add_tensor(w, "t", good_shape, 2, x, 12, &bad_kind, residual),
           BISTRO_ERR_INVALID_ARGUMENT);
    bistro_encoding topk_too_big = {
        .kind = BISTRO_ENCODING_TOP_K, .dtype = BISTRO_DTYPE_F32, .k = 13};
    EXPECT(bistro_delta_writer_add_tensor(w, "t", good_shape, 2, x, 12, &topk_too_big, residual),
           BISTRO_ERR_INVALID_ARGUMENT);
    x[3] = NAN;
    EXPECT(bistro_delta_writer_add_tensor(w, "t", good_shape, 2, x, 12, &dense, residual),
           BISTRO_ERR_NON_FINITE);
    x[3] = 0.5f;
    for (size_t i = 0; i < 12; i++) {
        CHECK(residual[i] == 0.0f);
    }
    OK(bistro_delta_writer_add_tensor(w, "t", good_shape, 2, x, 12, &dense, NULL));
    EXPECT(bistro_delta_writer_add_tensor(w, "t", good_shape, 2, x, 12, &dense, NULL),
           BISTRO_ERR_INVALID_ARGUMENT); /* duplicate name */
    bistro_buffer *buf = NULL;
    OK(bistro_delta_writer_finish(w, NULL, NULL, &buf));
    bistro_delta_writer_free(w);
    const uint8_t *bytes = bistro_buffer_data(buf);
    size_t len = bistro_buffer_len(buf);

    /* Truncated and damaged input. */
    bistro_delta_reader *r = (bistro_delta_reader *)0x1;
    EXPECT(bistro_delta_reader_open(bytes, 10, NULL, &r), BISTRO_ERR_TRUNCATED);
    EXPECT(bistro_delta_reader_open(bytes, len - 1, NULL, &r), BISTRO_ERR_CORRUPT);
    EXPECT(bistro_delta_reader_open(bytes + 1, len - 1, NULL, &r), BISTRO_ERR_BAD_MAGIC);
    EXPECT(bistro_delta_reader_open(NULL, len, NULL, &r), BISTRO_ERR_NULL_ARGUMENT);
    CHECK(r == (bistro_delta_reader *)0x1);
    bistro_limits small;
    OK(bistro_limits_default(&small));
    small.max_file_size = 100;
    EXPECT(bistro_delta_reader_open(bytes, len, &small, &r), BISTRO_ERR_LIMIT_EXCEEDED);

    r = NULL;
    OK(bistro_delta_reader_open(bytes, len, NULL, &r));
    bistro_buffer_free(buf);
    float dst[13];
    for (size_t i = 0; i < 13; i++) {
        dst[i] = 7.0f;
    }
    EXPECT(bistro_delta_reader_apply(r, 0, dst, 13, 1.0f), BISTRO_ERR_INVALID_ARGUMENT);
    CHECK(last_error_mentions("12 elements"));
    EXPECT(bistro_delta_reader_decode(r, 0, dst, 11), BISTRO_ERR_INVALID_ARGUMENT);
    EXPECT(bistro_delta_reader_apply(r, 1, dst, 12, 1.0f), BISTRO_ERR_INVALID_ARGUMENT);
    EXPECT(bistro_delta_reader_apply(r, 0, NULL, 12, 1.0f), BISTRO_ERR_NULL_ARGUMENT);
    for (size_t i = 0; i < 13; i++) {
        CHECK(dst[i] == 7.0f);
    }
    size_t index = 5;
    EXPECT(bistro_delta_reader_find(r, "missing", &index), BISTRO_ERR_NOT_FOUND);
    CHECK(index == 5);

    /* The message is copied like snprintf: cut, NUL-terminated, full length returned. */
    size_t full = bistro_last_error_length();
    char small_buf[8];
    memset(small_buf, '#', sizeof small_buf);
    CHECK(bistro_last_error(small_buf, sizeof small_buf) == full);
    CHECK(full > 7 && small_buf[7] == '\0' && strlen(small_buf) == 7);
    CHECK(bistro_last_error(NULL, 0) == full);
    bistro_delta_reader_free(r);
}

typedef struct {
    const bistro_delta_reader *reader;
    float out[4096];
    bistro_status status;
} apply_job;

static void *apply_in_thread(void *arg) {
    apply_job *job = arg;
    memset(job->out, 0, sizeof job->out);
    job->status = bistro_delta_reader_apply(job->reader, 0, job->out, 4096, 1.0f);
    return NULL;
}

/* One reader, four threads applying from it at once. */
static void test_threads(void) {
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = NULL;
    OK(bistro_delta_writer_new(&h, NULL, &w));
    static float x[4096];
    fill(x, 4096, 0.01f);
    const uint64_t shape[1] = {4096};
    bistro_encoding topk = {.kind = BISTRO_ENCODING_TOP_K, .dtype = BISTRO_DTYPE_BF16, .k = 300};
    OK(bistro_delta_writer_add_tensor(w, "t", shape, 1, x, 4096, &topk, NULL));
    bistro_buffer *buf = NULL;
    OK(bistro_delta_writer_finish(w, NULL, NULL, &buf));
    bistro_delta_writer_free(w);
    bistro_delta_reader *r = NULL;
    OK(bistro_delta_reader_open(bistro_buffer_data(buf), bistro_buffer_len(buf), NULL, &r));
    bistro_buffer_free(buf);

    static apply_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].reader = r;
        CHECK(pthread_create(&threads[i], NULL, apply_in_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(jobs[i].status == BISTRO_OK);
        CHECK(memcmp(jobs[i].out, jobs[0].out, sizeof jobs[0].out) == 0);
    }
    int nonzero = 0;
    for (size_t i = 0; i < 4096; i++) {
        nonzero += jobs[0].out[i] != 0.0f;
    }
    CHECK(nonzero == 300);
    bistro_delta_reader_free(r);
}

static int same_pages(const uint64_t *got, const uint64_t *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            return 0;
        }
    }
    return 1;
}

/* Every case of tests/vectors/pages.json. */
static void test_page_vectors(void) {
    CHECK(PAGE_VECTOR_COUNT > 0);
    for (size_t c = 0; c < PAGE_VECTOR_COUNT; c++) {
        const page_vector *v = &PAGE_VECTORS[c];
        bistro_dataset_params p;
        memcpy(p.dataset_id, v->dataset_id, 32);
        p.num_pages = v->num_pages;
        p.window_pages = v->window_pages;
        p.epoch_blocks = v->epoch_blocks;
        p.reveal_delay_blocks = v->reveal_delay_blocks;

        uint64_t epoch = UINT64_MAX;
        OK(bistro_pages_epoch_of(&p, v->block, &epoch));
        CHECK(epoch == v->epoch);

        uint64_t pages[64];
        CHECK(v->window_len <= 64 && v->local_len <= 64 && v->global_len <= 64);
        OK(bistro_pages_window(&p, v->uid, v->epoch, 0, pages, v->window_len));
        CHECK(same_pages(pages, v->window, v->window_len));
        if (v->window_len > 0) {
            bool contains = false;
            uint64_t position = 99;
            OK(bistro_pages_window_position(&p, v->uid, v->epoch, v->window[v->window_len - 1],
                                            &contains, &position));
            CHECK(contains && position == v->window_len - 1);
        }
        OK(bistro_pages_local(&p, v->uid, v->block, v->block_hash, pages, v->local_len));
        CHECK(same_pages(pages, v->local, v->local_len));
        OK(bistro_pages_global(&p, v->block, v->block_hash, pages, v->global_len));
        CHECK(same_pages(pages, v->global, v->global_len));
        if (failures > 0) {
            fprintf(stderr, "  (while checking page vector \"%s\")\n", v->name);
        }
    }

    /* Out-of-range requests are errors and leave the array alone. */
    const page_vector *v = &PAGE_VECTORS[0];
    bistro_dataset_params p;
    memcpy(p.dataset_id, v->dataset_id, 32);
    p.num_pages = v->num_pages;
    p.window_pages = v->window_pages;
    p.epoch_blocks = v->epoch_blocks;
    p.reveal_delay_blocks = v->reveal_delay_blocks;
    uint64_t pages[4] = {1, 2, 3, 4};
    EXPECT(bistro_pages_window(&p, v->uid, v->epoch, v->window_pages - 1, pages, 2),
           BISTRO_ERR_INVALID_ARGUMENT);
    p.window_pages = p.num_pages + 1;
    EXPECT(bistro_pages_global(&p, 0, v->block_hash, pages, 4), BISTRO_ERR_INVALID_ARGUMENT);
    CHECK(pages[0] == 1 && pages[3] == 4);
}

static void test_weights(void) {
    const uint16_t uids[4] = {0, 3, 5, 9};
    const float weights[4] = {1.0f, 0.0f, 0.5f, 0.25f};
    uint16_t out_uids[4], out_values[4];
    size_t n = 99;
    OK(bistro_weights_to_u16(uids, weights, 4, out_uids, out_values, &n));
    CHECK(n == 3);
    /* 0.5 * 65535 = 32767.5 rounds to even: 32768; 0.25 * 65535 = 16383.75 -> 16384. */
    CHECK(out_uids[0] == 0 && out_uids[1] == 5 && out_uids[2] == 9);
    CHECK(out_values[0] == 65535 && out_values[1] == 32768 && out_values[2] == 16384);
    const float negative[2] = {1.0f, -0.5f};
    n = 99;
    EXPECT(bistro_weights_to_u16(uids, negative, 2, out_uids, out_values, &n),
           BISTRO_ERR_INVALID_ARGUMENT);
    CHECK(n == 99);
}

/* The scoring rule, moving averages and Yuma clipping on hand-computed
 * examples (docs/incentive.md has the formulas). */
static void test_scoring(void) {
    bistro_score_rule rule;
    OK(bistro_score_rule_default(&rule));
    CHECK(rule.confidence_z == 3.09);
    /* Local gains 0.10 and 0.12 (mean 0.11, se 0.01), global gains 0 and
     * 0.02 (mean 0.01, se 0.01): specific gain 0.10, se 0.01 * sqrt(2); the
     * bound 0.10 - 3.09 * 0.01414 = 0.056 is positive, so it is the
     * miner's own work; the upper bound of its global gain, 0.01 + 3.09 *
     * 0.01, is above 0.001, so it is mergeable and paid its local gain,
     * 0.11. */
    const double master[2] = {4.0, 5.0};
    const double local[2] = {3.6, 4.4};
    const double global[2] = {4.0, 4.9};
    bistro_verdict v;
    OK(bistro_score_judge(NULL, master, local, 2, master, global, 2, &v));
    CHECK(v.reason == BISTRO_VERDICT_SCORED && v.mergeable);
    CHECK(fabs(v.score - 0.11) < 1e-12 && fabs(v.specific_gain - 0.10) < 1e-12);
    CHECK(fabs(v.specific_se - 0.01 * sqrt(2.0)) < 1e-12);
    /* A stricter bound: not specific, unpaid, still mergeable. */
    rule.confidence_z = 10.0;
    OK(bistro_score_judge(&rule, master, local, 2, master, global, 2, &v));
    CHECK(v.reason == BISTRO_VERDICT_NOT_SPECIFIC && v.score == 0.0 && v.mergeable);
    /* A NaN loss is a verdict; a NaN rule is an error (nothing written). */
    const double nan_local[2] = {NAN, 4.4};
    OK(bistro_score_judge(NULL, master, nan_local, 2, master, global, 2, &v));
    CHECK(v.reason == BISTRO_VERDICT_NON_FINITE_LOSS && v.score == 0.0 && !v.mergeable);
    rule.confidence_z = NAN;
    v.score = -1.0;
    EXPECT(bistro_score_judge(&rule, master, local, 2, master, global, 2, &v),
           BISTRO_ERR_INVALID_ARGUMENT);
    CHECK(v.score == -1.0);
    EXPECT(bistro_score_judge(NULL, NULL, local, 2, master, global, 2, &v),
           BISTRO_ERR_NULL_ARGUMENT);

    double average = 0.0;
    OK(bistro_next_average(0.2, 0.6, 0.5, &average));
    CHECK(average == 0.4);
    EXPECT(bistro_next_average(0.2, 1.5, 0.5, &average), BISTRO_ERR_INVALID_ARGUMENT);
    EXPECT(bistro_next_average(0.2, 0.5, 0.0, &average), BISTRO_ERR_INVALID_ARGUMENT);
    CHECK(average == 0.4);
    const double averages[3] = {0.375, 0.0, 0.125};
    double weights[3];
    OK(bistro_weights_from_averages(averages, 3, weights));
    CHECK(weights[0] == 0.75 && weights[1] == 0.0 && weights[2] == 0.25);

    /* Validators with 60, 30 and 10 of the stake; the first two weigh miner
     * 0 only, the third miner 1 only. Consensus: miner 0 gets 1 (90 % of
     * the stake give it 1), miner 1 gets 0; vtrust 1, 1, 0. */
    const double stakes[3] = {60.0, 30.0, 10.0};
    const double rows[6] = {1.0, 0.0, 2.0, 0.0, 0.0, 1.0};
    double consensus[2], vtrust[3], clipped[6];
    OK(bistro_yuma_clip(stakes, 3, rows, 2, BISTRO_DEFAULT_KAPPA, consensus, vtrust, clipped));
    CHECK(consensus[0] == 1.0 && consensus[1] == 0.0);
    CHECK(vtrust[0] == 1.0 && vtrust[1] == 1.0 && vtrust[2] == 0.0);
    CHECK(clipped[2] == 1.0 && clipped[4] == 0.0 && clipped[5] == 0.0);
    OK(bistro_yuma_clip(stakes, 3, rows, 2, 0.5, consensus, vtrust, NULL));
    const double negative[3] = {60.0, -1.0, 10.0};
    EXPECT(bistro_yuma_clip(negative, 3, rows, 2, 0.5, consensus, vtrust, NULL),
           BISTRO_ERR_INVALID_ARGUMENT);
    EXPECT(bistro_yuma_clip(stakes, 3, rows, 2, 1.5, consensus, vtrust, NULL),
           BISTRO_ERR_INVALID_ARGUMENT);
}

#if defined(BISTRO_TEST_DELIBERATE_LEAK) || defined(BISTRO_TEST_DELIBERATE_OVERFLOW)
/* scripts/test-ffi.sh builds these variants once to prove that valgrind and
 * LeakSanitizer fail the run on a leaked handle or an out-of-bounds write:
 * a checker that cannot fail proves nothing. */
static void deliberate_fault(void) {
    bistro_delta_header h = make_header();
    bistro_delta_writer *w = NULL;
    OK(bistro_delta_writer_new(&h, NULL, &w));
#ifdef BISTRO_TEST_DELIBERATE_LEAK
    (void)w; /* never freed */
#else
    float x[64];
    fill(x, 64, 0.1f);
    const uint64_t shape[1] = {64};
    bistro_encoding dense = {.kind = BISTRO_ENCODING_DENSE, .dtype = BISTRO_DTYPE_F32};
    OK(bistro_delta_writer_add_tensor(w, "x", shape, 1, x, 64, &dense, NULL));
    bistro_buffer *buf = NULL;
    OK(bistro_delta_writer_finish(w, NULL, NULL, &buf));
    bistro_delta_writer_free(w);
    bistro_delta_reader *r = NULL;
    OK(bistro_delta_reader_open(bistro_buffer_data(buf), bistro_buffer_len(buf), NULL, &r));
    bistro_buffer_free(buf);
    float *short_buffer = malloc(63 * sizeof(float)); /* one element short */
    OK(bistro_delta_reader_decode(r, 0, short_buffer, 64)); /* the lie: 64 */
    free(short_buffer);
    bistro_delta_reader_free(r);
#endif
}

int main(void) {
    deliberate_fault();
    printf("c: deliberate fault done (%d checks failed)\n", failures);
    return 0;
}
#else
int main(void) {
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bistro-c-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }

    test_versions();
    test_round_trip();
    test_file_round_trip(dir);
    test_sign_in_place();
    test_error_paths();
    test_threads();
    test_page_vectors();
    test_weights();
    test_scoring();

    if (rmdir(dir) != 0) {
        perror("rmdir (the test left files behind)");
        failures++;
    }
    printf("c: %d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
#endif
