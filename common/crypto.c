#include "common/crypto.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

struct crypto_sha256 {
	EVP_MD_CTX *ctx;
};

static void crypto_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

struct crypto_sha256 *crypto_sha256_new(void)
{
	struct crypto_sha256 *h = xcalloc(1, sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		fatalx("EVP sha256 init failed");
	return h;
}

void crypto_sha256_update(struct crypto_sha256 *h, const void *p, size_t n)
{
	if (EVP_DigestUpdate(h->ctx, p, n) != 1)
		BUG("EVP_DigestUpdate failed");
}

void crypto_sha256_final_hex(struct crypto_sha256 *h, char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
		BUG("EVP_DigestFinal_ex failed");
	crypto_hex(md, 32, hex_out);
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		BUG("EVP_DigestInit_ex failed");
}

void crypto_sha256_free(struct crypto_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void crypto_sha256_hex(const void *p, size_t n, char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
		BUG("EVP_Digest failed");
	crypto_hex(md, 32, hex_out);
}

int crypto_sha256_file_hex(const char *path, char hex_out[CRYPTO_SHA256_HEX_LEN + 1], struct err *err)
{
	struct crypto_sha256 *h = NULL;
	char buf[65536];
	int fd = -1, rc = -1;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open %s", path);
		goto out;
	}
	h = crypto_sha256_new();
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno(err, "read %s", path);
			goto out;
		}
		crypto_sha256_update(h, buf, (size_t)n);
	}
	crypto_sha256_final_hex(h, hex_out);
	rc = 0;
out:
	crypto_sha256_free(h);
	if (fd >= 0)
		close(fd);
	return rc;
}

void crypto_hmac_sha256_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                            char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, md, &len) == NULL || len != 32)
		BUG("HMAC failed");
	crypto_hex(md, 32, hex_out);
}

int crypto_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
	if (a_len != b_len)
		return 0;
	return CRYPTO_memcmp(a, b, a_len) == 0;
}

int crypto_random_hex(char *out, size_t n_bytes, struct err *err)
{
	unsigned char raw[128];

	if (n_bytes > sizeof(raw))
		return err_set(err, ERR_INVAL, "random token of %zu bytes is too long", n_bytes);
	if (RAND_bytes(raw, (int)n_bytes) != 1)
		return err_set(err, ERR_SYS, "RAND_bytes failed");
	crypto_hex(raw, n_bytes, out);
	return 0;
}

int crypto_is_sha256_hex(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == CRYPTO_SHA256_HEX_LEN;
}
