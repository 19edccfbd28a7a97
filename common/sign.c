#include "common/sign.h"
#include "common/xalloc.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SIGN_COMMENT_PREFIX "untrusted comment: "
#define SIGN_MAX_COMMENT    1024

/* Blob layouts of signify(1): all fields are raw bytes. */
#define SIGN_PUB_BLOB (2 + SIGN_KEYNUM_BYTES + SIGN_PUB_BYTES)
#define SIGN_SIG_BLOB (2 + SIGN_KEYNUM_BYTES + SIGN_SIG_BYTES)
#define SIGN_KEY_BLOB (2 + 2 + 4 + 16 + 8 + SIGN_KEYNUM_BYTES + SIGN_SEED_BYTES + SIGN_PUB_BYTES)

void sign_key_clear(struct sign_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
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

int sign_keygen(struct sign_key *out, struct err *err)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	size_t seed_len = SIGN_SEED_BYTES, pub_len = SIGN_PUB_BYTES;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1) {
		err_set(err, ERR_SYS, "ed25519 key generation failed");
		goto out;
	}
	if (EVP_PKEY_get_raw_private_key(pkey, out->seed, &seed_len) != 1 || seed_len != SIGN_SEED_BYTES ||
	    EVP_PKEY_get_raw_public_key(pkey, out->pub, &pub_len) != 1 || pub_len != SIGN_PUB_BYTES) {
		err_set(err, ERR_SYS, "ed25519 raw key export failed");
		goto out;
	}
	if (RAND_bytes(out->keynum, SIGN_KEYNUM_BYTES) != 1) {
		err_set(err, ERR_SYS, "RAND_bytes failed");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		sign_key_clear(out);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int sign_message(const struct sign_key *k, const void *msg, size_t n, struct sign_sig *out, struct err *err)
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	size_t sig_len = SIGN_SIG_BYTES;
	int rc = -1;

	if ((pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->seed, SIGN_SEED_BYTES)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestSign(md, out->sig, &sig_len, msg, n) != 1 || sig_len != SIGN_SIG_BYTES) {
		err_set(err, ERR_SYS, "ed25519 signing failed");
		goto out;
	}
	memcpy(out->keynum, k->keynum, SIGN_KEYNUM_BYTES);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return rc;
}

int sign_verify(const struct sign_pub *pub, const void *msg, size_t n, const struct sign_sig *sig,
                struct err *err)
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	char want[SIGN_KEYNUM_HEX + 1], got[SIGN_KEYNUM_HEX + 1];
	int rc = -1;

	if (memcmp(pub->keynum, sig->keynum, SIGN_KEYNUM_BYTES) != 0) {
		sign_keynum_hex(sig->keynum, got);
		sign_keynum_hex(pub->keynum, want);
		return err_set(err, ERR_INVAL, "signed by key %s, not by key %s", got, want);
	}
	if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub->pub, SIGN_PUB_BYTES)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL || EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) != 1) {
		err_set(err, ERR_SYS, "ed25519 verifier setup failed");
		goto out;
	}
	if (EVP_DigestVerify(md, sig->sig, SIGN_SIG_BYTES, msg, n) != 1) {
		err_set(err, ERR_INVAL, "signature verification failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return rc;
}

/* comment line + base64(blob) line. */
static char *sign_file_format(const unsigned char *blob, size_t n, const char *comment)
{
	size_t b64_cap = 4 * ((n + 2) / 3) + 1;
	char *b64 = xmalloc(b64_cap), *text;
	char clean[SIGN_MAX_COMMENT];
	size_t i;

	/* The comment is one line: control characters would break the file. */
	for (i = 0; comment[i] != '\0' && i + 1 < sizeof(clean) - sizeof(SIGN_COMMENT_PREFIX); i++)
		clean[i] = (unsigned char)comment[i] < 0x20 ? ' ' : comment[i];
	clean[i] = '\0';
	EVP_EncodeBlock((unsigned char *)b64, blob, (int)n);
	text = xasprintf(SIGN_COMMENT_PREFIX "%s\n%s\n", clean, b64);
	free(b64);
	return text;
}

/* Decodes the base64 line of a signify file into exactly want bytes. */
static int sign_file_parse(const char *text, size_t len, unsigned char *blob, size_t want, struct err *err)
{
	const char *nl, *b64, *end;
	size_t b64_len, pad = 0;
	unsigned char *tmp = NULL;
	int n, rc = -1;

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
	if (b64_len == 0 || b64_len % 4 != 0 || b64_len > 4 * ((want + 2) / 3))
		return err_set(err, ERR_INVAL, "signify file: the base64 line has the wrong length");
	for (size_t i = 0; i < b64_len; i++) {
		char c = b64[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || (c == '=' && i + 2 >= b64_len)))
			return err_set(err, ERR_INVAL, "signify file: invalid base64");
	}
	pad = (b64[b64_len - 1] == '=') + (b64[b64_len - 2] == '=');
	tmp = xmalloc(b64_len);
	if ((n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)b64_len)) < 0) {
		err_set(err, ERR_INVAL, "signify file: invalid base64");
		goto out;
	}
	if ((size_t)n - pad != want) {
		err_set(err, ERR_INVAL, "signify file: %zu bytes where %zu were expected", (size_t)n - pad,
		        want);
		goto out;
	}
	if (tmp[0] != 'E' || tmp[1] != 'd') {
		err_set(err, ERR_INVAL, "signify file: unsupported algorithm (not Ed)");
		goto out;
	}
	memcpy(blob, tmp, want);
	rc = 0;
out:
	OPENSSL_cleanse(tmp, b64_len);
	free(tmp);
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
static int sign_key_checksum(const struct sign_key *k, unsigned char out[8])
{
	unsigned char both[SIGN_SEED_BYTES + SIGN_PUB_BYTES], digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	int ok;

	memcpy(both, k->seed, SIGN_SEED_BYTES);
	memcpy(both + SIGN_SEED_BYTES, k->pub, SIGN_PUB_BYTES);
	ok = EVP_Digest(both, sizeof(both), digest, &dlen, EVP_sha512(), NULL) == 1 && dlen >= 8;
	if (ok)
		memcpy(out, digest, 8);
	OPENSSL_cleanse(both, sizeof(both));
	OPENSSL_cleanse(digest, sizeof(digest));
	return ok ? 0 : -1;
}

char *sign_key_format(const struct sign_key *k, const char *comment)
{
	unsigned char blob[SIGN_KEY_BLOB];
	unsigned char *p = blob;
	char *text;

	memset(blob, 0, sizeof(blob));
	memcpy(p, "EdBK", 4);       /* Ed25519, bcrypt-pbkdf (with 0 rounds: no passphrase) */
	p += 4 + 4;                 /* kdfrounds = 0 */
	if (RAND_bytes(p, 16) != 1) /* salt: unused without rounds, random as signify writes it */
		memset(p, 0, 16);
	p += 16;
	if (sign_key_checksum(k, p) < 0)
		return NULL;
	p += 8;
	memcpy(p, k->keynum, SIGN_KEYNUM_BYTES);
	p += SIGN_KEYNUM_BYTES;
	memcpy(p, k->seed, SIGN_SEED_BYTES);
	p += SIGN_SEED_BYTES;
	memcpy(p, k->pub, SIGN_PUB_BYTES);
	text = sign_file_format(blob, sizeof(blob), comment);
	OPENSSL_cleanse(blob, sizeof(blob));
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
	if (sign_key_checksum(out, sum) < 0 || CRYPTO_memcmp(sum, blob + 4 + 4 + 16, 8) != 0) {
		sign_key_clear(out);
		err_set(err, ERR_INVAL, "secret key: checksum mismatch (corrupt key file)");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(blob, sizeof(blob));
	return rc;
}
