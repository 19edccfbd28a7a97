#ifndef ANVIL_CRYPTO_H
#define ANVIL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* sha256, HMAC, base64 and random bytes over nettle (GnuTLS's crypto
 * library, which libmicrohttpd maps into the server anyway) and the kernel's
 * getrandom(2). No hand-written crypto, no hand-written base64. */

#define CRYPTO_SHA256_BYTES   32
#define CRYPTO_SHA256_HEX_LEN 64
/* "SHA256:" + unpadded base64 of a sha256, as OpenSSH prints fingerprints. */
#define CRYPTO_FINGERPRINT_LEN (7 + 43)
/* Length of the padded base64 text of n bytes (without the NUL). */
#define CRYPTO_BASE64_LEN(n) (4 * (((n) + 2) / 3))

struct crypto_sha256; /* streaming hash state, opaque */

struct crypto_sha256 *crypto_sha256_new(void);
void crypto_sha256_update(struct crypto_sha256 *h, const void *p, size_t n);
/* Writes 64 lowercase hex chars + NUL to hex_out; h can be reused after. */
void crypto_sha256_final_hex(struct crypto_sha256 *h, char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);
void crypto_sha256_free(struct crypto_sha256 *h);

/* One-shot sha256 of a buffer: raw bytes, or lowercase hex. */
void crypto_sha256(const void *p, size_t n, unsigned char out[CRYPTO_SHA256_BYTES]);
void crypto_sha256_hex(const void *p, size_t n, char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);
/* sha256 of a whole file by path; -1 with err when it cannot be read. */
int crypto_sha256_file_hex(const char *path, char hex_out[CRYPTO_SHA256_HEX_LEN + 1], struct err *err);

/* HMAC-SHA256(key, msg) as lowercase hex. */
void crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                            char hex_out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Constant-time comparison; returns 1 when equal (lengths must match too). */
int crypto_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* n bytes from the kernel's random source (getrandom(2)); -1 with ERR_SYS when
 * it cannot be read. */
int crypto_random_bytes(void *out, size_t n, struct err *err);
/* n_bytes of randomness as 2*n_bytes hex chars in out (size >= 2*n_bytes+1). */
int crypto_random_hex(char *out, size_t n_bytes, struct err *err);

/* Standard base64 (RFC 4648 alphabet, '=' padding, no line breaks) of n bytes
 * into out, which holds CRYPTO_BASE64_LEN(n) + 1 chars (NUL-terminated). */
void crypto_base64_encode(const void *p, size_t n, char *out);
/* Strict decoding of exactly len chars of padded base64: len a multiple of 4,
 * only the alphabet, '=' only as the last one or two chars, no whitespace, no
 * stray bits in the last group (canonical form only: one text per byte
 * string). Writes at most out_cap bytes; their count in *out_len. -1 (no err:
 * callers word it) when the text is not such base64 or does not fit. */
int crypto_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_cap, size_t *out_len);

/* "SHA256:<unpadded base64>" of a sha256, OpenSSH's fingerprint form. */
void crypto_fingerprint(const unsigned char sha[CRYPTO_SHA256_BYTES], char out[CRYPTO_FINGERPRINT_LEN + 1]);

/* True when s is exactly 64 lowercase hex chars. */
int crypto_is_sha256_hex(const char *s);

#endif
