/* anvil-verify: the release check a board runs before it switches to a
 * release (docs/releases.md). Standalone and statically linked: the agent
 * cross-builds it from these sources for each board's arch. */
#include "common/log.h"
#include "deploy/verify.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#ifndef ANVIL_VERSION
#define ANVIL_VERSION "0"
#endif
/* The agent passes the sha256 prefix of the sources it compiled, so a board
 * tells which build it has; a CMake build of the host has none. */
#ifndef VERIFY_SRC_ID
#define VERIFY_SRC_ID "none"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: anvil-verify -p PUBKEY -m manifest.json -x manifest.json.sig [-s SHA256SUMS]\n"
	           "       anvil-verify --version\n"
	           "Run in the release directory: checks the signify signature of the manifest by\n"
	           "PUBKEY, every file of SHA256SUMS against its sha256, and each of them in the\n"
	           "signed manifest. Exit 0 verified, 1 refused, 2 usage.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"pubkey", required_argument, NULL, 'p'},
	    {"manifest", required_argument, NULL, 'm'},
	    {"signature", required_argument, NULL, 'x'},
	    {"sums", required_argument, NULL, 's'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct verify_paths p = {NULL, NULL, NULL, "SHA256SUMS"};
	struct verify_report rep;
	struct err err = {0};
	int c, rc;

	log_init("anvil-verify", LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "p:m:x:s:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			p.pubkey = optarg;
			break;
		case 'm':
			p.manifest = optarg;
			break;
		case 'x':
			p.signature = optarg;
			break;
		case 's':
			p.sums = optarg;
			break;
		case 'V':
			printf("anvil-verify %s src %s\n", ANVIL_VERSION, VERIFY_SRC_ID);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || p.pubkey == NULL || p.manifest == NULL || p.signature == NULL) {
		usage(stderr);
		return 2;
	}
	rc = verify_release(&p, &rep, &err);
	if (rc < 0)
		fprintf(stderr, "anvil-verify: refused: %s\n", err.msg);
	else
		printf("anvil-verify: %s signed by key %s (%s); release %s: %zu file(s), %" PRIu64
		       " bytes match %s and the manifest (%" PRId64 " ms)\n",
		       p.manifest, rep.keynum, p.pubkey, rep.version, rep.n_files, rep.bytes, p.sums,
		       rep.elapsed_ms);
	verify_report_release(&rep);
	return rc < 0 ? 1 : 0;
}
