#ifndef ANVIL_UI_STEPS_H
#define ANVIL_UI_STEPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "server/store/store.h"
#include "server/ui/ui_html.h"

struct srv;

/* A job's log as the job page shows it: split at the steps of its current
 * attempt (store_job_steps) into segments, each rendered in a container of
 * its own with line numbers of its own:
 *   segment 0       the log before the first step (checkout, runner; an
 *                   earlier attempt's log): lines L1, L2, ...
 *   segment 2k+1    step k (in start order): <details class="step"> with a
 *                   summary (state, name, duration), the command as a
 *                   command, then its lines s<k>-L1, ...
 *   segment 2k+2    what follows step k up to the next step: a<k>-L1, ...
 * A step that has not ended runs to the log's end. The agent's own line
 * "[anvil] step NAME: COMMAND" opening a step is the summary's command,
 * not output: skipped and not counted (a step's first output line is 1). A job without steps (an
 * older agent's) is segment 0 throughout. */
struct ui_steps {
	struct step_row *rows; /* owned; the current attempt's, by start offset */
	size_t n;
	int job_final;
};

int ui_steps_load(struct srv *srv, const struct job_row *j, struct ui_steps *out, struct err *err);
void ui_steps_release(struct ui_steps *s);

/* The segment holding log offset off, and where it ends (-1: open). */
int ui_steps_seg_at(const struct ui_steps *s, int64_t off, int64_t *end_out);
/* Where segment seg ends (-1: open). */
int64_t ui_steps_seg_end(const struct ui_steps *s, int seg);
/* The offset where segment seg begins. */
int64_t ui_steps_seg_start(const struct ui_steps *s, int seg);
/* The line id prefix of a segment ("", "s2-", "a2-"), in a buffer of 16. */
void ui_steps_prefix(char out[16], int seg);
/* Opens and closes a segment's container (segment 0 has none). */
void ui_steps_seg_open(struct buf *out, const struct ui_steps *s, int seg, int open);
void ui_steps_seg_close(struct buf *out, int seg);
/* Bytes to skip at a step's start (its "[anvil] step ..." line when data
 * begins with it whole) and the lines they hold. */
size_t ui_steps_echo_skip(const struct ui_steps *s, int seg, const char *data, size_t n, int64_t *lines_out);

/* The step list (state, name, duration; links to the sections). */
void ui_steps_list(struct buf *out, const struct ui_steps *s, int64_t now_ms);

/* The job page's log: every segment up to shown (complete lines), each
 * rendered from its last tail_bytes (open_tail_bytes for the failing or
 * running step, which is open) with a note and the raw log's link when
 * cut. *seg_out, *line_out and *ansi say where the live stream resumes;
 * *scroll_to names the line to bring into view ("" none). */
int ui_steps_log(struct srv *srv, const struct job_row *j, const struct ui_steps *s, int64_t shown,
                 struct buf *out, int *seg_out, int64_t *line_out, struct ui_ansi *ansi, char scroll_to[40],
                 struct err *err);

#endif
