#ifndef ANVIL_CRYPTO_H
#define ANVIL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* sha256, HMAC and random tokens over OpenSSL's EVP. No hand-written crypto. */

#define CRYPTO_SHA256_HEX_LEN 64

struct crypto_sha256; /* streaming hash state, opaque */

struct crypto_sha256 *crypto_sha256_new(void);
void crypto_sha256_update(struct crypto_sha256 *h, const void *p, size_t n);
/* Writes 64 lowercase hex chars + NUL to hex_out; h can be reused after. */
void crypto_sha256_final_hex(struct crypto_sha256 *h, char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);
void crypto_sha256_free(struct crypto_sha256 *h);

/* One-shot sha256 of a buffer, lowercase hex. */
void crypto_sha256_hex(const void *p, size_t n, char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);
/* sha256 of a whole file by path; -1 with err when it cannot be read. */
int crypto_sha256_file_hex(const char *path, char hex_out[CRYPTO_SHA256_HEX_LEN + 1], struct err *err);

/* HMAC-SHA256(key, msg) as lowercase hex. */
void crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                            char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Constant-time comparison; returns 1 when equal (lengths must match too). */
int crypto_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* n_bytes of randomness as 2*n_bytes hex chars in out (size >= 2*n_bytes+1). */
int crypto_random_hex(char *out, size_t n_bytes, struct err *err);

/* True when s is exactly 64 lowercase hex chars. */
int crypto_is_sha256_hex(const char *s);

#endif
