#include "common/crypto.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

struct crypto_sha256 {
	struct sha256_ctx ctx;
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

	sha256_init(&h->ctx);
	return h;
}

void crypto_sha256_update(struct crypto_sha256 *h, const void *p, size_t n)
{
	sha256_update(&h->ctx, n, p);
}

void crypto_sha256_final_hex(struct crypto_sha256 *h, char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_SIZE];

	sha256_digest(&h->ctx, sizeof(md), md); /* also starts the next hash */
	crypto_hex(md, sizeof(md), hex_out);
}

void crypto_sha256_free(struct crypto_sha256 *h)
{
	free(h);
}

void crypto_sha256(const void *p, size_t n, unsigned char out[CRYPTO_SHA256_BYTES])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, n, p);
	sha256_digest(&ctx, CRYPTO_SHA256_BYTES, out);
}

void crypto_sha256_hex(const void *p, size_t n, char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	unsigned char md[CRYPTO_SHA256_BYTES];

	crypto_sha256(p, n, md);
	crypto_hex(md, sizeof(md), hex_out);
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
	struct hmac_sha256_ctx ctx;
	unsigned char md[SHA256_DIGEST_SIZE];

	hmac_sha256_set_key(&ctx, key_len, key);
	hmac_sha256_update(&ctx, msg_len, msg);
	hmac_sha256_digest(&ctx, sizeof(md), md);
	explicit_bzero(&ctx, sizeof(ctx)); /* it holds the padded key */
	crypto_hex(md, sizeof(md), hex_out);
}

int crypto_ct_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
	if (a_len != b_len)
		return 0;
	return memeql_sec(a, b, a_len);
}

int crypto_random_bytes(void *out, size_t n, struct err *err)
{
	unsigned char *p = out;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		/* Blocks only until the kernel's pool is first seeded; reads of up
		 * to 256 bytes are not interrupted then, longer ones may be short. */
		if ((r = getrandom(p + got, n - got, 0)) < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(err, "getrandom");
		}
		got += (size_t)r;
	}
	return 0;
}

int crypto_random_hex(char *out, size_t n_bytes, struct err *err)
{
	unsigned char raw[128];

	if (n_bytes > sizeof(raw))
		return err_set(err, ERR_INVAL, "random token of %zu bytes is too long", n_bytes);
	if (crypto_random_bytes(raw, n_bytes, err) < 0)
		return -1;
	crypto_hex(raw, n_bytes, out);
	explicit_bzero(raw, n_bytes);
	return 0;
}

void crypto_base64_encode(const void *p, size_t n, char *out)
{
	base64_encode_raw(out, n, p);
	out[CRYPTO_BASE64_LEN(n)] = '\0';
}

static int crypto_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

int crypto_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_cap, size_t *out_len)
{
	struct base64_decode_ctx ctx;
	uint8_t group[BASE64_DECODE_LENGTH(4)];
	size_t pad = 0, data, n = 0, got;

	if (len % 4 != 0)
		return -1;
	/* nettle's decoder skips whitespace and takes '=' anywhere in the last
	 * group: the shape is checked here first, nettle then rejects stray bits. */
	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	data = len - pad;
	for (size_t i = 0; i < data; i++)
		if (!crypto_base64_char(in[i]))
			return -1;
	if (data * 6 / 8 > out_cap)
		return -1;
	/* A group of 4 chars at a time into a buffer of the size nettle asks
	 * for, so out needs room for the bytes only. */
	base64_decode_init(&ctx);
	for (size_t i = 0; i < len; i += 4) {
		if (!base64_decode_update(&ctx, &got, group, 4, in + i) || got > out_cap - n)
			return -1;
		memcpy(out + n, group, got);
		n += got;
	}
	if (!base64_decode_final(&ctx) || n != data * 6 / 8)
		return -1;
	*out_len = n;
	return 0;
}

void crypto_fingerprint(const unsigned char sha[CRYPTO_SHA256_BYTES], char out[CRYPTO_FINGERPRINT_LEN + 1])
{
	char b64[CRYPTO_BASE64_LEN(CRYPTO_SHA256_BYTES) + 1];

	crypto_base64_encode(sha, CRYPTO_SHA256_BYTES, b64);
	b64[CRYPTO_FINGERPRINT_LEN - 7] = '\0'; /* drops the one '=' of 32 bytes */
	memcpy(out, "SHA256:", 7);
	memcpy(out + 7, b64, CRYPTO_FINGERPRINT_LEN - 7 + 1);
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
