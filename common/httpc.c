#include "common/httpc.h"

#include <signal.h>
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/curlbind.h"
#include "common/httpev.h"

#define HTTPC_DEFAULT_TIMEOUT_MS 30000L
#define HTTPC_MAX_CONNECT_MS     10000L

struct httpc {
	CURL *curl;                        /* owned; one handle reused so connections stay alive;
	                                      NULL until the first libcurl request of a light client */
	unsigned flags;                    /* HTTPC_LIGHT */
	struct httpev *ev;                 /* owned; a light client's libevent state, made on first use */
	struct strv bases;                 /* owned, each without trailing slash */
	size_t cur;                        /* the one requests go to */
	char *auth_header;                 /* owned "Authorization: Bearer ...", or NULL */
	char errbuf[CURL_ERROR_SIZE];      /* curl's CURLOPT_ERRORBUFFER */
	volatile sig_atomic_t *abort_flag; /* borrowed; non-zero aborts transfers */
};

const char *httpc_base_url(const struct httpc *c)
{
	return c->bases.v[c->cur];
}

void httpc_set_abort_flag(struct httpc *c, volatile sig_atomic_t *flag)
{
	c->abort_flag = flag;
}

/* curl calls this about once a second and on progress: a set abort flag
 * (a signal asked the process to stop) ends a long poll at once. */
static int httpc_progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                             curl_off_t ulnow)
{
	struct httpc *c = clientp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return c->abort_flag != NULL && *c->abort_flag != 0;
}

/* State of one transfer, on httpc_do's stack; curl's callbacks get it. */
struct httpc_xfer {
	const struct httpc_req *req; /* borrowed */
	struct httpc_resp *resp;     /* borrowed */
	size_t mem_off;              /* read position in req->body */
	off_t fd_start;              /* body_fd's offset at start, -1 when not seekable */
	uint64_t fd_left;            /* bytes of body_fd still to send */
	long status;                 /* status line of the answer being received */
	int read_errno;
	int read_short;
	int write_errno;
};

/* libcurl and the easy handle; ERR_SYS when libcurl cannot be loaded. */
static int httpc_curl_open(struct httpc *c, struct err *err)
{
	if (curlbind_load(err) < 0)
		return -1;
	/* curl_easy_init fails only when out of memory: same policy as xmalloc. */
	if ((c->curl = curl_easy_init()) == NULL)
		fatalx("curl_easy_init failed");
	return 0;
}

struct httpc *httpc_new(const char *base_url, const char *token)
{
	return httpc_new_flags(base_url, token, 0);
}

struct httpc *httpc_new_flags(const char *base_url, const char *token, unsigned flags)
{
	struct httpc *c = xcalloc(1, sizeof(*c));
	const char *p = base_url;

	do {
		size_t n = strcspn(p, ",");
		size_t end = n;

		while (end > 0 && p[end - 1] == '/')
			end--;
		if (end > 0) {
			char *one = xstrndup(p, end);
			strv_push(&c->bases, one);
			free(one);
		}
		p += n;
	} while (*p++ == ',');
	if (c->bases.n == 0)
		strv_push(&c->bases, "");
	if (token != NULL)
		c->auth_header = xasprintf("Authorization: Bearer %s", token);
	c->flags = flags;
	/* libcurl is loaded here, by the first client a process makes: a
	 * program that cannot talk HTTP has nothing to do (the server's one
	 * client, the status sender, loads it itself and survives its absence).
	 * A light client loads it only for a request libevent does not take. */
	struct err err = {0};
	if (!(flags & HTTPC_LIGHT) && httpc_curl_open(c, &err) < 0)
		fatalx("%s", err.msg);
	return c;
}

void httpc_free(struct httpc *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	httpev_free(c->ev);
	strv_release(&c->bases);
	if (c->auth_header != NULL) {
		explicit_bzero(c->auth_header, strlen(c->auth_header));
		free(c->auth_header);
	}
	free(c);
}

enum err_code httpc_err_code(long status)
{
	switch (status) {
	case 400:
		return ERR_INVAL;
	case 401:
		return ERR_AUTH;
	case 403:
		return ERR_FORBIDDEN;
	case 404:
		return ERR_NOTFOUND;
	case 409:
		return ERR_CONFLICT;
	case 413:
		return ERR_LIMIT;
	case 503:
		return ERR_UNAVAIL;
	default:
		return ERR_SYS;
	}
}

char *httpc_escape(const char *s)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *p = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* RFC 3986 unreserved characters pass; everything else, '/' included, is escaped. */
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = digits[ch >> 4];
			*p++ = digits[ch & 0xf];
		}
	}
	*p = '\0';
	return out;
}

static int httpc_is_2xx(long status)
{
	return status >= 200 && status < 300;
}

static size_t httpc_read_cb(char *dst, size_t size, size_t nitems, void *userdata)
{
	struct httpc_xfer *x = userdata;
	const struct httpc_req *req = x->req;
	size_t want = size * nitems;
	ssize_t n;

	if (req->body_fd < 0) {
		size_t left = req->body_len - x->mem_off;

		if (want > left)
			want = left;
		if (want > 0)
			memcpy(dst, (const char *)req->body + x->mem_off, want);
		x->mem_off += want;
		return want;
	}
	if (x->fd_left == 0)
		return 0;
	if ((uint64_t)want > x->fd_left)
		want = (size_t)x->fd_left;
	do
		n = read(req->body_fd, dst, want);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		x->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (n == 0) {
		x->read_short = 1;
		return CURL_READFUNC_ABORT;
	}
	x->fd_left -= (uint64_t)n;
	return (size_t)n;
}

/* curl rewinds the body when it resends on a fresh connection (a kept-alive
 * one the server had closed), so the body must be seekable back to its start. */
static int httpc_seek_cb(void *userdata, curl_off_t offset, int origin)
{
	struct httpc_xfer *x = userdata;
	const struct httpc_req *req = x->req;

	if (origin != SEEK_SET || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (req->body_fd < 0) {
		if ((size_t)offset > req->body_len)
			return CURL_SEEKFUNC_FAIL;
		x->mem_off = (size_t)offset;
		return CURL_SEEKFUNC_OK;
	}
	if (x->fd_start < 0 || (uint64_t)offset > req->body_fd_len)
		return CURL_SEEKFUNC_CANTSEEK;
	if (lseek(req->body_fd, x->fd_start + (off_t)offset, SEEK_SET) < 0)
		return CURL_SEEKFUNC_FAIL;
	x->fd_left = req->body_fd_len - (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t httpc_write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct httpc_xfer *x = userdata;
	size_t n = size * nmemb, off = 0;

	/* Only a 2xx body goes to out_fd: an error answer stays in resp.body so
	 * its message can be read, and the caller's file gets no error text. */
	if (x->req->out_fd < 0 || !httpc_is_2xx(x->status)) {
		buf_append(&x->resp->body, p, n);
		return n;
	}
	while (off < n) {
		ssize_t w = write(x->req->out_fd, p + off, n - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			x->write_errno = errno;
			return 0;
		}
		off += (size_t)w;
	}
	return n;
}

static size_t httpc_header_cb(char *p, size_t size, size_t nitems, void *userdata)
{
	struct httpc_xfer *x = userdata;
	size_t n = size * nitems, len = n;
	char *line;

	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new answer begins (after a 1xx, say): forget the previous one's headers. */
		const char *sp = memchr(p, ' ', len);

		strv_release(&x->resp->headers);
		x->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	if (len == 0 || memchr(p, ':', len) == NULL)
		return n;
	line = xstrndup(p, len);
	for (char *q = line; *q != ':'; q++)
		*q = (char)tolower((unsigned char)*q);
	strv_push(&x->resp->headers, line);
	free(line);
	return n;
}

const char *httpc_resp_header(const struct httpc_resp *resp, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < resp->headers.n; i++) {
		const char *h = resp->headers.v[i];

		if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
			h += nlen + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			return h;
		}
	}
	return NULL;
}

void httpc_resp_release(struct httpc_resp *resp)
{
	buf_release(&resp->body);
	strv_release(&resp->headers);
	resp->status = 0;
}

/* Sets one option; on failure jumps to the caller's setopt_failed label. */
#define HTTPC_SETOPT(h, opt, val)                                                                            \
	do {                                                                                                 \
		if ((cc = curl_easy_setopt((h), (opt), (val))) != CURLE_OK)                                  \
			goto setopt_failed;                                                                  \
	} while (0)

static int httpc_do_curl(struct httpc *c, const struct httpc_req *req, const char *url, long timeout_ms,
                         struct httpc_resp *resp, struct err *err)
{
	struct httpc_xfer x = {.req = req, .resp = resp, .fd_start = -1};
	struct curl_slist *headers = NULL; /* owned */
	struct curl_slist *tmp;
	char *ctype = NULL; /* owned */
	int has_body = req->body_fd >= 0 || req->body != NULL;
	CURL *h;
	CURLcode cc = CURLE_OK;
	int rc = -1;

	if (c->curl == NULL && httpc_curl_open(c, err) < 0)
		return -1;
	h = c->curl;

	/* Reset keeps the live connections, so keep-alive survives between requests. */
	curl_easy_reset(h);
	c->errbuf[0] = '\0';
	HTTPC_SETOPT(h, CURLOPT_ERRORBUFFER, c->errbuf);
	HTTPC_SETOPT(h, CURLOPT_URL, url);
	HTTPC_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	HTTPC_SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	HTTPC_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS,
	             timeout_ms < HTTPC_MAX_CONNECT_MS ? timeout_ms : HTTPC_MAX_CONNECT_MS);
	HTTPC_SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (c->abort_flag != NULL) {
		HTTPC_SETOPT(h, CURLOPT_NOPROGRESS, 0L);
		HTTPC_SETOPT(h, CURLOPT_XFERINFOFUNCTION, httpc_progress_cb);
		HTTPC_SETOPT(h, CURLOPT_XFERINFODATA, c);
	}
#if LIBCURL_VERSION_NUM >= 0x075500
	HTTPC_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	HTTPC_SETOPT(h, CURLOPT_USERAGENT, "anvil/" ANVIL_VERSION);
	HTTPC_SETOPT(h, CURLOPT_WRITEFUNCTION, httpc_write_cb);
	HTTPC_SETOPT(h, CURLOPT_WRITEDATA, &x);
	HTTPC_SETOPT(h, CURLOPT_HEADERFUNCTION, httpc_header_cb);
	HTTPC_SETOPT(h, CURLOPT_HEADERDATA, &x);

	/* An empty Expect: header turns off curl's 100-continue wait for big bodies. */
	if ((tmp = curl_slist_append(headers, "Expect:")) == NULL)
		fatalx("curl_slist_append: out of memory");
	headers = tmp;
	if (c->auth_header != NULL) {
		if ((tmp = curl_slist_append(headers, c->auth_header)) == NULL)
			fatalx("curl_slist_append: out of memory");
		headers = tmp;
	}
	if (has_body) {
		ctype = xasprintf("Content-Type: %s",
		                  req->content_type != NULL ? req->content_type : "application/json");
		if ((tmp = curl_slist_append(headers, ctype)) == NULL)
			fatalx("curl_slist_append: out of memory");
		headers = tmp;
	}
	HTTPC_SETOPT(h, CURLOPT_HTTPHEADER, headers);

	if (req->body_fd >= 0) {
		x.fd_left = req->body_fd_len;
		x.fd_start = lseek(req->body_fd, 0, SEEK_CUR);
	}
	if (strcmp(req->method, "GET") == 0 && !has_body) {
		HTTPC_SETOPT(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "HEAD") == 0) {
		HTTPC_SETOPT(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0) {
		HTTPC_SETOPT(h, CURLOPT_UPLOAD, 1L);
		HTTPC_SETOPT(h, CURLOPT_INFILESIZE_LARGE,
		             (curl_off_t)(req->body_fd >= 0 ? req->body_fd_len : req->body_len));
		HTTPC_SETOPT(h, CURLOPT_READFUNCTION, httpc_read_cb);
		HTTPC_SETOPT(h, CURLOPT_READDATA, &x);
		HTTPC_SETOPT(h, CURLOPT_SEEKFUNCTION, httpc_seek_cb);
		HTTPC_SETOPT(h, CURLOPT_SEEKDATA, &x);
	} else {
		HTTPC_SETOPT(h, CURLOPT_POST, 1L);
		if (req->body_fd >= 0) {
			HTTPC_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_fd_len);
			HTTPC_SETOPT(h, CURLOPT_READFUNCTION, httpc_read_cb);
			HTTPC_SETOPT(h, CURLOPT_READDATA, &x);
			HTTPC_SETOPT(h, CURLOPT_SEEKFUNCTION, httpc_seek_cb);
			HTTPC_SETOPT(h, CURLOPT_SEEKDATA, &x);
		} else {
			HTTPC_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE,
			             (curl_off_t)(req->body ? req->body_len : 0));
			HTTPC_SETOPT(h, CURLOPT_POSTFIELDS, req->body != NULL ? (const char *)req->body : "");
		}
		if (strcmp(req->method, "POST") != 0)
			HTTPC_SETOPT(h, CURLOPT_CUSTOMREQUEST, req->method);
	}

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (x.write_errno != 0) {
			errno = x.write_errno;
			err_errno(err, "write answer of %s %s", req->method, req->path);
		} else if (x.read_errno != 0) {
			errno = x.read_errno;
			err_errno(err, "read body of %s %s", req->method, req->path);
		} else if (x.read_short) {
			err_set(err, ERR_SYS, "body of %s %s ended %llu bytes short", req->method, req->path,
			        (unsigned long long)x.fd_left);
		} else {
			err_set(err, ERR_UNAVAIL, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
			/* That server is gone: the caller's retry goes to the next. */
			if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_GOT_NOTHING ||
			    cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
			    cc == CURLE_COULDNT_RESOLVE_HOST)
				c->cur = (c->cur + 1) % c->bases.n;
		}
		goto out;
	}
	if ((cc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status)) != CURLE_OK) {
		err_set(err, ERR_SYS, "curl_easy_getinfo: %s", curl_easy_strerror(cc));
		goto out;
	}
	rc = 0;
	goto out;

setopt_failed:
	err_set(err, ERR_SYS, "curl_easy_setopt: %s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
out:
	/* The handle must not keep pointers into this frame or into freed lists. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(ctype);
	return rc;
}

int httpc_do(struct httpc *c, const struct httpc_req *req, struct httpc_resp *resp, struct err *err)
{
	long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
	char *url; /* owned */
	int rc = 1;

	httpc_resp_release(resp);
	if (req->method == NULL || req->path == NULL)
		return err_set(err, ERR_INVAL, "httpc request without method or path");
	url = xasprintf("%s%s", c->bases.v[c->cur], req->path);
	if (c->flags & HTTPC_LIGHT) {
		int retry_next = 0;

		if (c->ev == NULL)
			c->ev = httpev_new();
		rc = httpev_do(c->ev, url, c->auth_header ? c->auth_header + strlen("Authorization: ") : NULL,
		               req, timeout_ms, c->abort_flag, resp, &retry_next, err);
		/* That server is gone: the caller's retry goes to the next. */
		if (rc < 0 && retry_next)
			c->cur = (c->cur + 1) % c->bases.n;
	}
	if (rc > 0)
		rc = httpc_do_curl(c, req, url, timeout_ms, resp, err);
	free(url);
	return rc;
}

int httpc_resp_json(const struct httpc_resp *resp, json_t **out, struct err *err)
{
	json_t *j = NULL; /* owned */
	json_error_t je = {0};
	const char *msg;
	int rc = -1;

	*out = NULL;
	if (resp->body.len > 0)
		j = json_loadb(resp->body.data, resp->body.len, 0, &je);
	if (httpc_is_2xx(resp->status)) {
		if (resp->body.len == 0) {
			rc = 0;
			goto out;
		}
		if (j == NULL) {
			err_set(err, ERR_SYS, "bad JSON in answer (status %ld): %s", resp->status, je.text);
			goto out;
		}
		*out = j;
		j = NULL;
		rc = 0;
		goto out;
	}
	msg = json_string_value(json_object_get(j, "error"));
	if (msg != NULL) {
		err_set(err, httpc_err_code(resp->status), "%s", msg);
	} else {
		/* Not our JSON (a proxy's page, say): show the start of its first line. */
		size_t n = 0;

		while (n < resp->body.len && n < 120 && isprint((unsigned char)resp->body.data[n]))
			n++;
		err_set(err, httpc_err_code(resp->status), "HTTP status %ld%s%.*s", resp->status,
		        n ? ": " : "", (int)n, n ? resp->body.data : "");
	}
out:
	json_decref(j);
	return rc;
}

int httpc_json(struct httpc *c, const char *method, const char *path, json_t *body, long timeout_ms,
               json_t **out, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	char *dump = NULL; /* owned */
	int rc = -1;

	*out = NULL;
	req.method = method;
	req.path = path;
	req.timeout_ms = timeout_ms;
	if (body != NULL) {
		if ((dump = json_dumps(body, JSON_COMPACT)) == NULL) {
			err_set(err, ERR_SYS, "json_dumps failed for %s %s", method, path);
			goto out;
		}
		req.body = dump;
		req.body_len = strlen(dump);
	}
	if (httpc_do(c, &req, &resp, err) < 0)
		goto out;
	rc = httpc_resp_json(&resp, out, err);
out:
	httpc_resp_release(&resp);
	free(dump);
	return rc;
}
