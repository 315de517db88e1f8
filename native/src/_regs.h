/* Private to libvasp: a set of measurement registers (one SHA-256 bank and
 * one SM3 bank) with its event log, shared by the ASP and the instances. */
#ifndef VASP_REGS_H
#define VASP_REGS_H

#include "_buf.h"
#include "_internal.h"

#define VASP_NUM_BANKS 2u
#define VASP_DESC_MAX 1024u
/* Bounds the log so a caller cannot grow it without limit. */
#define VASP_LOG_MAX 65536u

typedef struct vasp_log_entry {
  uint32_t reg;
  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN]; /* of the data, per bank */
  char *description;                               /* valid UTF-8, NUL-terminated */
} vasp_log_entry;

typedef struct vasp_regs {
  uint8_t bank[VASP_NUM_BANKS][VASP_NUM_REGS][VASP_DIGEST_LEN];
  vasp_log_entry *log;
  size_t n_log, cap_log;
} vasp_regs;

/* Extends `reg` in every bank with that bank's digest of data[0..len) and
 * logs it. Arguments are checked here (register range, description). */
int vasp_regs_extend(vasp_regs *regs, vasp_err *err, uint32_t reg, const uint8_t *data,
                     size_t len, const char *description);

/* As vasp_regs_extend, with the data's digests already computed (one per
 * bank, in vasp_alg order). */
int vasp_regs_extend_digests(vasp_regs *regs, vasp_err *err, uint32_t reg,
                             const uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN],
                             const char *description);

/* Checks reg and description as extend does, before any work is done. */
int vasp_regs_check_extend(vasp_err *err, uint32_t reg, const char *description);

int vasp_regs_read(const vasp_regs *regs, vasp_err *err, uint32_t alg, uint32_t reg,
                   uint8_t *out);

/* The log as JSON (see vasp_asp_event_log), NUL-terminated; *out for vasp_free. */
int vasp_regs_log_json(const vasp_regs *regs, vasp_err *err, uint8_t **out, size_t *out_len);

/* Serialises both banks and the log (layout in docs/quote-format.md). */
void vasp_regs_write(const vasp_regs *regs, vasp_wbuf *w);
/* Parses what vasp_regs_write wrote into an empty regs; false with r->why. */
bool vasp_regs_parse(vasp_regs *regs, vasp_rbuf *r);

void vasp_regs_free(vasp_regs *regs);

/* Description rules shared with parsing: at most VASP_DESC_MAX bytes of
 * valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Returns NULL when fine, else why not. */
const char *vasp_desc_problem(const char *s, size_t len);

#endif
