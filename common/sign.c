#include "common/sign.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <stdint.h>
#include <string.h>

#include <nettle/eddsa.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#define SIGN_COMMENT_PREFIX "untrusted comment: "
#define SIGN_MAX_COMMENT    1024

/* Blob layouts of signify(1): all fields are raw bytes. */
#define SIGN_PUB_BLOB (2 + SIGN_KEYNUM_BYTES + SIGN_PUB_BYTES)
#define SIGN_SIG_BLOB (2 + SIGN_KEYNUM_BYTES + SIGN_SIG_BYTES)
#define SIGN_KEY_BLOB (2 + 2 + 4 + 16 + 8 + SIGN_KEYNUM_BYTES + SIGN_SEED_BYTES + SIGN_PUB_BYTES)

void sign_key_clear(struct sign_key *k)
{
	explicit_bzero(k, sizeof(*k));
}

void sign_keynum_hex(const unsigned char keynum[SIGN_KEYNUM_BYTES], char out[SIGN_KEYNUM_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SIGN_KEYNUM_BYTES; i++) {
		out[2 * i] = digits[keynum[i] >> 4];
		out[2 * i + 1] = digits[keynum[i] & 0xf];
	}
	out[SIGN_KEYNUM_HEX] = '\0';
}

void sign_key_pub(const struct sign_key *k, struct sign_pub *out)
{
	memcpy(out->keynum, k->keynum, SIGN_KEYNUM_BYTES);
	memcpy(out->pub, k->pub, SIGN_PUB_BYTES);
}

/* The seed is the private key (RFC 8032 5.1.5): 32 random bytes, the
 * public key derived from it. */
int sign_keygen(struct sign_key *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	if (crypto_random_bytes(out->seed, SIGN_SEED_BYTES, err) < 0 ||
	    crypto_random_bytes(out->keynum, SIGN_KEYNUM_BYTES, err) < 0) {
		sign_key_clear(out);
		return err_wrap(err, "ed25519 key generation");
	}
	ed25519_sha512_public_key(out->pub, out->seed);
	return 0;
}

int sign_message(const struct sign_key *k, const void *msg, size_t n, struct sign_sig *out, struct err *err)
{
	(void)err; /* Ed25519 signing cannot fail */
	ed25519_sha512_sign(k->pub, k->seed, n, msg, out->sig);
	memcpy(out->keynum, k->keynum, SIGN_KEYNUM_BYTES);
	return 0;
}

int sign_verify(const struct sign_pub *pub, const void *msg, size_t n, const struct sign_sig *sig,
                struct err *err)
{
	char want[SIGN_KEYNUM_HEX + 1], got[SIGN_KEYNUM_HEX + 1];

	if (memcmp(pub->keynum, sig->keynum, SIGN_KEYNUM_BYTES) != 0) {
		sign_keynum_hex(sig->keynum, got);
		sign_keynum_hex(pub->keynum, want);
		return err_set(err, ERR_INVAL, "signed by key %s, not by key %s", got, want);
	}
	/* nettle rejects a public key that is not a curve point and a
	 * non-canonical S (>= the group order) as OpenSSL did. */
	if (!ed25519_sha512_verify(pub->pub, n, msg, sig->sig))
		return err_set(err, ERR_INVAL, "signature verification failed");
	return 0;
}

/* comment line + base64(blob) line. */
static char *sign_file_format(const unsigned char *blob, size_t n, const char *comment)
{
	char *b64 = xmalloc(CRYPTO_BASE64_LEN(n) + 1), *text;
	char clean[SIGN_MAX_COMMENT];
	size_t i;

	/* The comment is one line: control characters would break the file. */
	for (i = 0; comment[i] != '\0' && i + 1 < sizeof(clean) - sizeof(SIGN_COMMENT_PREFIX); i++)
		clean[i] = (unsigned char)comment[i] < 0x20 ? ' ' : comment[i];
	clean[i] = '\0';
	crypto_base64_encode(blob, n, b64);
	text = xasprintf(SIGN_COMMENT_PREFIX "%s\n%s\n", clean, b64);
	free(b64);
	return text;
}

/* Decodes the base64 line of a signify file into exactly want bytes. */
static int sign_file_parse(const char *text, size_t len, unsigned char *blob, size_t want, struct err *err)
{
	const char *nl, *b64, *end;
	unsigned char tmp[CRYPTO_BASE64_LEN(SIGN_KEY_BLOB) / 4 * 3]; /* the largest blob and its padding */
	size_t b64_len, n = 0;
	int rc = -1;

	if (len < sizeof(SIGN_COMMENT_PREFIX) - 1 ||
	    memcmp(text, SIGN_COMMENT_PREFIX, sizeof(SIGN_COMMENT_PREFIX) - 1) != 0)
		return err_set(err, ERR_INVAL,
		               "not a signify file: it must start with \"untrusted comment: \"");
	if ((nl = memchr(text, '\n', len)) == NULL || (size_t)(nl - text) > SIGN_MAX_COMMENT)
		return err_set(err, ERR_INVAL, "signify file: the comment line is unterminated or too long");
	b64 = nl + 1;
	end = memchr(b64, '\n', len - (size_t)(b64 - text));
	if (end == NULL)
		end = text + len;
	b64_len = (size_t)(end - b64);
	if (b64_len == 0 || b64_len % 4 != 0 || b64_len > CRYPTO_BASE64_LEN(want))
		return err_set(err, ERR_INVAL, "signify file: the base64 line has the wrong length");
	/* Strict: only the alphabet, '=' only as padding, no stray bits. */
	if (crypto_base64_decode(b64, b64_len, tmp, sizeof(tmp), &n) < 0) {
		err_set(err, ERR_INVAL, "signify file: invalid base64");
		goto out;
	}
	if (n != want) {
		err_set(err, ERR_INVAL, "signify file: %zu bytes where %zu were expected", n, want);
		goto out;
	}
	if (tmp[0] != 'E' || tmp[1] != 'd') {
		err_set(err, ERR_INVAL, "signify file: unsupported algorithm (not Ed)");
		goto out;
	}
	memcpy(blob, tmp, want);
	rc = 0;
out:
	explicit_bzero(tmp, sizeof(tmp));
	return rc;
}

char *sign_pub_format(const struct sign_pub *p, const char *comment)
{
	unsigned char blob[SIGN_PUB_BLOB];

	blob[0] = 'E';
	blob[1] = 'd';
	memcpy(blob + 2, p->keynum, SIGN_KEYNUM_BYTES);
	memcpy(blob + 2 + SIGN_KEYNUM_BYTES, p->pub, SIGN_PUB_BYTES);
	return sign_file_format(blob, sizeof(blob), comment);
}

char *sign_sig_format(const struct sign_sig *s, const char *comment)
{
	unsigned char blob[SIGN_SIG_BLOB];

	blob[0] = 'E';
	blob[1] = 'd';
	memcpy(blob + 2, s->keynum, SIGN_KEYNUM_BYTES);
	memcpy(blob + 2 + SIGN_KEYNUM_BYTES, s->sig, SIGN_SIG_BYTES);
	return sign_file_format(blob, sizeof(blob), comment);
}

/* SHA-512(seed | pub)[0..8]: signify's check that a key decrypted right. */
static void sign_key_checksum(const struct sign_key *k, unsigned char out[8])
{
	struct sha512_ctx ctx;

	sha512_init(&ctx);
	sha512_update(&ctx, SIGN_SEED_BYTES, k->seed);
	sha512_update(&ctx, SIGN_PUB_BYTES, k->pub);
	sha512_digest(&ctx, 8, out); /* the first 8 bytes of the digest */
	explicit_bzero(&ctx, sizeof(ctx));
}

char *sign_key_format(const struct sign_key *k, const char *comment)
{
	unsigned char blob[SIGN_KEY_BLOB];
	unsigned char *p = blob;
	struct err ignored = {0};
	char *text;

	memset(blob, 0, sizeof(blob));
	memcpy(p, "EdBK", 4); /* Ed25519, bcrypt-pbkdf (with 0 rounds: no passphrase) */
	p += 4 + 4;           /* kdfrounds = 0 */
	/* salt: unused without rounds, random as signify writes it */
	if (crypto_random_bytes(p, 16, &ignored) < 0)
		memset(p, 0, 16);
	p += 16;
	sign_key_checksum(k, p);
	p += 8;
	memcpy(p, k->keynum, SIGN_KEYNUM_BYTES);
	p += SIGN_KEYNUM_BYTES;
	memcpy(p, k->seed, SIGN_SEED_BYTES);
	p += SIGN_SEED_BYTES;
	memcpy(p, k->pub, SIGN_PUB_BYTES);
	text = sign_file_format(blob, sizeof(blob), comment);
	explicit_bzero(blob, sizeof(blob));
	return text;
}

int sign_pub_parse(const char *text, size_t len, struct sign_pub *out, struct err *err)
{
	unsigned char blob[SIGN_PUB_BLOB];

	if (sign_file_parse(text, len, blob, sizeof(blob), err) < 0)
		return -1;
	memcpy(out->keynum, blob + 2, SIGN_KEYNUM_BYTES);
	memcpy(out->pub, blob + 2 + SIGN_KEYNUM_BYTES, SIGN_PUB_BYTES);
	return 0;
}

int sign_sig_parse(const char *text, size_t len, struct sign_sig *out, struct err *err)
{
	unsigned char blob[SIGN_SIG_BLOB];

	if (sign_file_parse(text, len, blob, sizeof(blob), err) < 0)
		return -1;
	memcpy(out->keynum, blob + 2, SIGN_KEYNUM_BYTES);
	memcpy(out->sig, blob + 2 + SIGN_KEYNUM_BYTES, SIGN_SIG_BYTES);
	return 0;
}

int sign_key_parse(const char *text, size_t len, struct sign_key *out, struct err *err)
{
	unsigned char blob[SIGN_KEY_BLOB], sum[8];
	const unsigned char *p = blob + 4;
	uint32_t rounds;
	int rc = -1;

	if (sign_file_parse(text, len, blob, sizeof(blob), err) < 0)
		return -1;
	if (blob[2] != 'B' || blob[3] != 'K') {
		err_set(err, ERR_INVAL, "secret key: unsupported key derivation");
		goto out;
	}
	rounds = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	if (rounds != 0) {
		err_set(err, ERR_INVAL, "secret key is protected by a passphrase (kdfrounds %u)", rounds);
		goto out;
	}
	p += 4 + 16 + 8;
	memcpy(out->keynum, p, SIGN_KEYNUM_BYTES);
	memcpy(out->seed, p + SIGN_KEYNUM_BYTES, SIGN_SEED_BYTES);
	memcpy(out->pub, p + SIGN_KEYNUM_BYTES + SIGN_SEED_BYTES, SIGN_PUB_BYTES);
	sign_key_checksum(out, sum);
	if (!memeql_sec(sum, blob + 4 + 4 + 16, 8)) {
		sign_key_clear(out);
		err_set(err, ERR_INVAL, "secret key: checksum mismatch (corrupt key file)");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(blob, sizeof(blob));
	return rc;
}
