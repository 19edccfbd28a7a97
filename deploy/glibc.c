#include "deploy/glibc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"

#define GLIBC_SHT_VERNEED   0x6ffffffeu
#define GLIBC_PT_LOAD       1u
#define GLIBC_PT_DYNAMIC    2u
#define GLIBC_DT_NULL       0
#define GLIBC_DT_STRTAB     5
#define GLIBC_DT_STRSZ      10
#define GLIBC_DT_VERNEED    0x6ffffffe
#define GLIBC_DT_VERNEEDNUM 0x6fffffff
#define GLIBC_MAX_TABLE     (64u * 1024 * 1024) /* a section or table read whole */
#define GLIBC_MAX_ENTRIES   65536

/* An open ELF file: fd, size, class and byte order. */
struct glibc_elf {
	int fd;
	uint64_t size;
	int is64;
	int msb;
};

static uint64_t glibc_get(const struct glibc_elf *e, const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[e->msb ? n - 1 - i : i] << (8 * i);
	return v;
}

/* Reads len bytes at off into a fresh buffer (caller frees). */
static int glibc_read(const struct glibc_elf *e, uint64_t off, uint64_t len, unsigned char **out,
                      struct err *err)
{
	unsigned char *b;
	uint64_t done = 0;

	if (len > GLIBC_MAX_TABLE || off > e->size || len > e->size - off)
		return err_set(err, ERR_INVAL, "ELF table at %llu (%llu bytes) lies outside the file",
		               (unsigned long long)off, (unsigned long long)len);
	b = xmalloc(len ? len : 1);
	while (done < len) {
		ssize_t got = pread(e->fd, b + done, len - done, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			free(b);
			return got < 0 ? err_errno(err, "read ELF")
			               : err_set(err, ERR_INVAL, "ELF file is truncated");
		}
		done += (uint64_t)got;
	}
	*out = b;
	return 0;
}

/* "GLIBC_2.34" → keeps the higher of best and "2.34". */
static void glibc_consider(const char *name, char best[GLIBC_VERSION_MAX])
{
	const char *v;
	size_t i;

	if (strncmp(name, "GLIBC_", 6) != 0)
		return;
	v = name + 6;
	if (v[0] < '0' || v[0] > '9' || strlen(v) >= GLIBC_VERSION_MAX)
		return;
	for (i = 0; v[i]; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || v[i] == '.'))
			return;
	if (best[0] == '\0' || glibc_version_cmp(v, best) > 0)
		snprintf(best, GLIBC_VERSION_MAX, "%s", v);
}

/* Walks a version-needs table (vn entries chained by vn_next, each with
 * vn_cnt aux entries chained by vna_next) whose names are in strtab. */
static int glibc_walk_verneed(const struct glibc_elf *e, const unsigned char *vn, uint64_t vn_len,
                              uint64_t count, const unsigned char *str, uint64_t str_len,
                              char best[GLIBC_VERSION_MAX], struct err *err)
{
	uint64_t off = 0;

	for (uint64_t n = 0; n < count && n < GLIBC_MAX_ENTRIES; n++) {
		uint64_t cnt, aux, next, aoff;

		if (off > vn_len || vn_len - off < 16)
			return err_set(err, ERR_INVAL, "ELF version-needs entry %llu lies outside its table",
			               (unsigned long long)n);
		cnt = glibc_get(e, vn + off + 2, 2);
		aux = glibc_get(e, vn + off + 8, 4);
		next = glibc_get(e, vn + off + 12, 4);
		aoff = off + aux;
		for (uint64_t a = 0; a < cnt; a++) {
			uint64_t name, anext;

			if (aoff > vn_len || vn_len - aoff < 16)
				return err_set(err, ERR_INVAL,
				               "ELF version-needs aux entry lies outside its table");
			name = glibc_get(e, vn + aoff + 8, 4);
			anext = glibc_get(e, vn + aoff + 12, 4);
			if (name < str_len && memchr(str + name, '\0', str_len - name) != NULL)
				glibc_consider((const char *)str + name, best);
			if (anext == 0)
				break;
			aoff += anext;
		}
		if (next == 0)
			break;
		off += next;
	}
	return 0;
}

/* Through the section headers: the SHT_GNU_verneed section and the string
 * table its sh_link names. *found = 0 when there is no such section. */
static int glibc_by_sections(const struct glibc_elf *e, const unsigned char *eh, char best[GLIBC_VERSION_MAX],
                             int *found, struct err *err)
{
	uint64_t shoff = glibc_get(e, eh + (e->is64 ? 0x28 : 0x20), e->is64 ? 8 : 4);
	uint64_t shentsize = glibc_get(e, eh + (e->is64 ? 0x3a : 0x2e), 2);
	uint64_t shnum = glibc_get(e, eh + (e->is64 ? 0x3c : 0x30), 2);
	unsigned char *sh = NULL, *vn = NULL, *str = NULL;
	int rc = -1;

	*found = 0;
	if (shoff == 0 || shnum == 0)
		return 0;
	if (shentsize < (e->is64 ? 64u : 40u))
		return err_set(err, ERR_INVAL, "ELF section header size %llu is too small",
		               (unsigned long long)shentsize);
	if (glibc_read(e, shoff, shentsize * shnum, &sh, err) < 0)
		return -1;
	for (uint64_t i = 0; i < shnum; i++) {
		const unsigned char *s = sh + i * shentsize;
		uint64_t type = glibc_get(e, s + 4, 4), link, off, size, info, soff, ssize;
		const unsigned char *ls;

		if (type != GLIBC_SHT_VERNEED)
			continue;
		off = glibc_get(e, s + (e->is64 ? 0x18 : 0x10), e->is64 ? 8 : 4);
		size = glibc_get(e, s + (e->is64 ? 0x20 : 0x14), e->is64 ? 8 : 4);
		link = glibc_get(e, s + (e->is64 ? 0x28 : 0x18), 4);
		info = glibc_get(e, s + (e->is64 ? 0x2c : 0x1c), 4);
		if (link >= shnum) {
			err_set(err, ERR_INVAL, "ELF version-needs section links to section %llu of %llu",
			        (unsigned long long)link, (unsigned long long)shnum);
			goto out;
		}
		ls = sh + link * shentsize;
		soff = glibc_get(e, ls + (e->is64 ? 0x18 : 0x10), e->is64 ? 8 : 4);
		ssize = glibc_get(e, ls + (e->is64 ? 0x20 : 0x14), e->is64 ? 8 : 4);
		if (glibc_read(e, off, size, &vn, err) < 0 || glibc_read(e, soff, ssize, &str, err) < 0)
			goto out;
		if (glibc_walk_verneed(e, vn, size, info, str, ssize, best, err) < 0)
			goto out;
		*found = 1;
		break;
	}
	rc = 0;
out:
	free(sh);
	free(vn);
	free(str);
	return rc;
}

/* A virtual address → file offset through the PT_LOAD segments. */
static int glibc_vaddr(const struct glibc_elf *e, const unsigned char *ph, uint64_t phentsize, uint64_t phnum,
                       uint64_t vaddr, uint64_t *off)
{
	for (uint64_t i = 0; i < phnum; i++) {
		const unsigned char *p = ph + i * phentsize;
		uint64_t poff, pvaddr, pfilesz;

		if (glibc_get(e, p, 4) != GLIBC_PT_LOAD)
			continue;
		poff = glibc_get(e, p + (e->is64 ? 0x08 : 0x04), e->is64 ? 8 : 4);
		pvaddr = glibc_get(e, p + (e->is64 ? 0x10 : 0x08), e->is64 ? 8 : 4);
		pfilesz = glibc_get(e, p + (e->is64 ? 0x20 : 0x10), e->is64 ? 8 : 4);
		if (vaddr >= pvaddr && vaddr - pvaddr < pfilesz) {
			*off = poff + (vaddr - pvaddr);
			return 0;
		}
	}
	return -1;
}

/* Without section headers: DT_VERNEED, DT_VERNEEDNUM, DT_STRTAB and
 * DT_STRSZ of the dynamic segment. */
static int glibc_by_dynamic(const struct glibc_elf *e, const unsigned char *eh, char best[GLIBC_VERSION_MAX],
                            struct err *err)
{
	uint64_t phoff = glibc_get(e, eh + (e->is64 ? 0x20 : 0x1c), e->is64 ? 8 : 4);
	uint64_t phentsize = glibc_get(e, eh + (e->is64 ? 0x36 : 0x2a), 2);
	uint64_t phnum = glibc_get(e, eh + (e->is64 ? 0x38 : 0x2c), 2);
	unsigned char *ph = NULL, *dyn = NULL, *vn = NULL, *str = NULL;
	uint64_t verneed = 0, verneednum = 0, strtab = 0, strsz = 0, vn_off, str_off, vn_len;
	int rc = -1;

	if (phoff == 0 || phnum == 0)
		return 0;
	if (phentsize < (e->is64 ? 56u : 32u))
		return err_set(err, ERR_INVAL, "ELF program header size %llu is too small",
		               (unsigned long long)phentsize);
	if (glibc_read(e, phoff, phentsize * phnum, &ph, err) < 0)
		return -1;
	for (uint64_t i = 0; i < phnum; i++) {
		const unsigned char *p = ph + i * phentsize;
		uint64_t off, size, esz = e->is64 ? 16 : 8;

		if (glibc_get(e, p, 4) != GLIBC_PT_DYNAMIC)
			continue;
		off = glibc_get(e, p + (e->is64 ? 0x08 : 0x04), e->is64 ? 8 : 4);
		size = glibc_get(e, p + (e->is64 ? 0x20 : 0x10), e->is64 ? 8 : 4);
		if (glibc_read(e, off, size, &dyn, err) < 0)
			goto out;
		for (uint64_t d = 0; d + esz <= size; d += esz) {
			int64_t tag = (int64_t)glibc_get(e, dyn + d, (int)esz / 2);
			uint64_t val = glibc_get(e, dyn + d + esz / 2, (int)esz / 2);
			if (tag == GLIBC_DT_NULL)
				break;
			if (tag == GLIBC_DT_VERNEED)
				verneed = val;
			else if (tag == GLIBC_DT_VERNEEDNUM)
				verneednum = val;
			else if (tag == GLIBC_DT_STRTAB)
				strtab = val;
			else if (tag == GLIBC_DT_STRSZ)
				strsz = val;
		}
		break;
	}
	if (verneed == 0 || verneednum == 0 || strtab == 0) {
		rc = 0;
		goto out;
	}
	if (glibc_vaddr(e, ph, phentsize, phnum, verneed, &vn_off) < 0 ||
	    glibc_vaddr(e, ph, phentsize, phnum, strtab, &str_off) < 0) {
		err_set(err, ERR_INVAL, "ELF dynamic tables lie outside the loaded segments");
		goto out;
	}
	/* The table's length is not recorded: read up to the end of the file,
	 * capped; the walk checks every entry against it. */
	vn_len = e->size - vn_off < GLIBC_MAX_TABLE ? e->size - vn_off : GLIBC_MAX_TABLE;
	if (strsz > e->size - str_off)
		strsz = e->size - str_off;
	if (glibc_read(e, vn_off, vn_len, &vn, err) < 0 || glibc_read(e, str_off, strsz, &str, err) < 0)
		goto out;
	rc = glibc_walk_verneed(e, vn, vn_len, verneednum, str, strsz, best, err);
out:
	free(ph);
	free(dyn);
	free(vn);
	free(str);
	return rc;
}

int glibc_elf_needed(const char *path, char out[GLIBC_VERSION_MAX], struct err *err)
{
	struct glibc_elf e = {-1, 0, 0, 0};
	unsigned char eh[64];
	struct stat sb;
	ssize_t got;
	int found = 0, rc = -1;

	out[0] = '\0';
	if ((e.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(e.fd, &sb) < 0) {
		err_errno(err, "open %s", path);
		goto out;
	}
	e.size = (uint64_t)sb.st_size;
	got = pread(e.fd, eh, sizeof(eh), 0);
	if (got < 0) {
		err_errno(err, "read %s", path);
		goto out;
	}
	if (got < 52 || memcmp(eh, "\177ELF", 4) != 0 || (eh[4] != 1 && eh[4] != 2) ||
	    (eh[5] != 1 && eh[5] != 2)) {
		rc = 0; /* not an ELF file */
		goto out;
	}
	e.is64 = eh[4] == 2;
	e.msb = eh[5] == 2;
	if (e.is64 && got < 64) {
		err_set(err, ERR_INVAL, "%s: truncated ELF header", path);
		goto out;
	}
	if (glibc_by_sections(&e, eh, out, &found, err) < 0 ||
	    (!found && glibc_by_dynamic(&e, eh, out, err) < 0)) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		err_set(err, err->code, "%s: %s", path, msg);
		goto out;
	}
	rc = 0;
out:
	if (e.fd >= 0)
		close(e.fd);
	return rc;
}

int glibc_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && (*a < '0' || *a > '9')) || (*b && (*b < '0' || *b > '9')))
			break;
	}
	return 0;
}

int glibc_parse_board(const char *output, char out[GLIBC_VERSION_MAX])
{
	const char *nl, *p, *last = NULL;
	size_t len;

	if (output == NULL)
		return -1;
	nl = strchr(output, '\n');
	len = nl ? (size_t)(nl - output) : strlen(output);
	/* The last "N.N" on the first line: "glibc 2.36", "ldd (...) 2.36". */
	for (p = output; p < output + len; p++)
		if (*p >= '0' && *p <= '9' && (p == output || p[-1] == ' ') && p + 2 < output + len &&
		    strchr(p, '.') && strchr(p, '.') < output + len)
			last = p;
	if (last == NULL)
		return -1;
	for (len = 0;
	     len + 1 < GLIBC_VERSION_MAX && ((last[len] >= '0' && last[len] <= '9') || last[len] == '.');
	     len++)
		out[len] = last[len];
	out[len] = '\0';
	return strchr(out, '.') != NULL && out[len - 1] != '.' ? 0 : -1;
}
