#ifndef ANVIL_GLIBC_H
#define ANVIL_GLIBC_H

#include "common/err.h"

/* The glibc check of DESIGN.md: the highest GLIBC_x.y symbol version an ELF
 * file needs (from its version-needs table, .gnu.version_r, found through
 * the section headers or, when they are stripped, the dynamic segment),
 * compared with the board's glibc. Reads the file itself, runs nothing.
 * Handles ELF32 and ELF64, either byte order; untrusted input: every offset
 * is checked against the file size. */

#define GLIBC_VERSION_MAX 32

/* out: "2.34" (the highest GLIBC_* version needed, GLIBC_PRIVATE ignored),
 * or "" when path is not an ELF file or needs no versioned glibc symbol
 * (static binaries, scripts). -1 with ERR_SYS when it cannot be read,
 * ERR_INVAL when it is a broken ELF file. */
int glibc_elf_needed(const char *path, char out[GLIBC_VERSION_MAX], struct err *err);

/* Compares dotted versions numerically ("2.9" < "2.34"); <0, 0, >0. */
int glibc_version_cmp(const char *a, const char *b);

/* The version in what a board prints for `getconf GNU_LIBC_VERSION`
 * ("glibc 2.36") or the first line of `ldd --version` ("ldd (Debian GLIBC
 * 2.36-9+deb12u4) 2.36"): 0 and out "2.36", or -1 when none is found. */
int glibc_parse_board(const char *output, char out[GLIBC_VERSION_MAX]);

#endif
