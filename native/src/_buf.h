/* Private to libvasp: a growable byte writer and a bounds-checked reader for
 * the little-endian serialisations (state file, export blobs, quotes). */
#ifndef VASP_BUF_H
#define VASP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writer. A failed allocation sets `failed` and turns later writes into
 * no-ops, so a serialiser checks once at the end. Growth wipes the old
 * buffer: writers carry key material. */
typedef struct vasp_wbuf {
  uint8_t *p;
  size_t len, cap;
  bool failed;
} vasp_wbuf;

void vasp_wb_put(vasp_wbuf *w, const void *data, size_t len);
void vasp_wb_u8(vasp_wbuf *w, uint8_t v);
void vasp_wb_u16(vasp_wbuf *w, uint16_t v);
void vasp_wb_u32(vasp_wbuf *w, uint32_t v);
void vasp_wb_u64(vasp_wbuf *w, uint64_t v);
/* u32 length, then the bytes. */
void vasp_wb_blob(vasp_wbuf *w, const void *data, size_t len);
/* Reserves len bytes and returns where they start (NULL on failure). */
uint8_t *vasp_wb_reserve(vasp_wbuf *w, size_t len);
/* Hands the buffer to the caller (malloc'd, for vasp_free) and resets w;
 * NULL when a write failed (w is then wiped and freed). */
uint8_t *vasp_wb_take(vasp_wbuf *w, size_t *len);
/* Wipes and frees. */
void vasp_wb_free(vasp_wbuf *w);

/* Reader. The first failure records why (with the offset) in `why`; later
 * reads fail too, so a parser checks once at the end. */
typedef struct vasp_rbuf {
  const uint8_t *p;
  size_t len, off;
  char why[96];
} vasp_rbuf;

void vasp_rb_init(vasp_rbuf *r, const uint8_t *p, size_t len);
bool vasp_rb_ok(const vasp_rbuf *r);
/* Records a failure reason (only the first one sticks); returns false. */
bool vasp_rb_bad(vasp_rbuf *r, const char *why);
/* Returns a pointer to the next n bytes, or NULL past the end. */
const uint8_t *vasp_rb_take(vasp_rbuf *r, size_t n);
bool vasp_rb_get(vasp_rbuf *r, void *out, size_t n);
bool vasp_rb_u8(vasp_rbuf *r, uint8_t *v);
bool vasp_rb_u16(vasp_rbuf *r, uint16_t *v);
bool vasp_rb_u32(vasp_rbuf *r, uint32_t *v);
bool vasp_rb_u64(vasp_rbuf *r, uint64_t *v);
/* A u32-length-prefixed blob of at most max bytes. */
bool vasp_rb_blob(vasp_rbuf *r, const uint8_t **p, size_t *len, size_t max);
/* A u32 element count, at most max, and small enough that count * min_each
 * bytes remain (so a forged count cannot make the parser allocate). */
bool vasp_rb_count(vasp_rbuf *r, size_t *n, size_t max, size_t min_each);
/* Fails unless every byte was consumed. */
bool vasp_rb_end(vasp_rbuf *r);

#endif
