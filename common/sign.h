#ifndef ANVIL_SIGN_H
#define ANVIL_SIGN_H

#include <stddef.h>

#include "common/err.h"

/* Ed25519 signatures in the file formats of OpenBSD signify (signify(1)), over
 * nettle's hogweed (ed25519_sha512_*): a manifest signed here verifies with Debian's
 * `signify-openbsd -V -p KEY.pub -m FILE -x FILE.sig`, and a secret key file
 * written here (no passphrase) signs with `signify-openbsd -S`. No
 * hand-written crypto, no hand-written base64.
 *
 * Files: one "untrusted comment: ..." line, then one base64 line of
 *   public key  "Ed" | keynum[8] | pubkey[32]
 *   signature   "Ed" | keynum[8] | sig[64]       (sig over the message bytes)
 *   secret key  "Ed" | "BK" | kdfrounds[4]=0 | salt[16] | checksum[8] |
 *               keynum[8] | seed[32] | pubkey[32]
 * where checksum is the first 8 bytes of SHA-512(seed | pubkey). The keynum
 * names the key: a signature says which public key checks it. */

#define SIGN_KEYNUM_BYTES 8
#define SIGN_PUB_BYTES    32
#define SIGN_SEED_BYTES   32
#define SIGN_SIG_BYTES    64
#define SIGN_KEYNUM_HEX   (2 * SIGN_KEYNUM_BYTES)

struct sign_key {
	unsigned char keynum[SIGN_KEYNUM_BYTES];
	unsigned char seed[SIGN_SEED_BYTES]; /* the private half */
	unsigned char pub[SIGN_PUB_BYTES];
};

struct sign_pub {
	unsigned char keynum[SIGN_KEYNUM_BYTES];
	unsigned char pub[SIGN_PUB_BYTES];
};

struct sign_sig {
	unsigned char keynum[SIGN_KEYNUM_BYTES];
	unsigned char sig[SIGN_SIG_BYTES];
};

/* A fresh key with a random keynum. */
int sign_keygen(struct sign_key *out, struct err *err);
/* Signs msg (n bytes) with k; out names k's keynum. */
int sign_message(const struct sign_key *k, const void *msg, size_t n, struct sign_sig *out, struct err *err);
/* 0 when sig is a valid signature of msg by pub and the keynums match; else
 * -1 with ERR_INVAL ("signature verification failed", "signed by key X, not
 * key Y"). */
int sign_verify(const struct sign_pub *pub, const void *msg, size_t n, const struct sign_sig *sig,
                struct err *err);

/* The public half of k. */
void sign_key_pub(const struct sign_key *k, struct sign_pub *out);
/* keynum as 16 lowercase hex chars + NUL. */
void sign_keynum_hex(const unsigned char keynum[SIGN_KEYNUM_BYTES], char out[SIGN_KEYNUM_HEX + 1]);

/* The signify file texts (comment: one line, no newline; caller frees). */
char *sign_pub_format(const struct sign_pub *p, const char *comment);
char *sign_sig_format(const struct sign_sig *s, const char *comment);
char *sign_key_format(const struct sign_key *k, const char *comment);

/* Parse a signify file text (len bytes, need not be NUL-terminated).
 * ERR_INVAL when the comment line, the base64, the algorithm or the length
 * is wrong, or (secret key) when it is passphrase-protected or its checksum
 * does not match. */
int sign_pub_parse(const char *text, size_t len, struct sign_pub *out, struct err *err);
int sign_sig_parse(const char *text, size_t len, struct sign_sig *out, struct err *err);
int sign_key_parse(const char *text, size_t len, struct sign_key *out, struct err *err);

/* Wipes a key from memory. */
void sign_key_clear(struct sign_key *k);

#endif
