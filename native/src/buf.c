#include "_buf.h"

#include "_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *vasp_wb_reserve(vasp_wbuf *w, size_t len) {
  if (w->failed) return NULL;
  if (len > SIZE_MAX / 2 - w->len) {
    w->failed = true;
    return NULL;
  }
  if (!w->p || w->len + len > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + len) cap *= 2;
    /* Not realloc: the old block must be wiped before it is released. */
    uint8_t *p = malloc(cap);
    if (!p) {
      w->failed = true;
      return NULL;
    }
    if (w->len) memcpy(p, w->p, w->len);
    vasp_wipe(w->p, w->cap);
    free(w->p);
    w->p = p;
    w->cap = cap;
  }
  uint8_t *at = w->p + w->len;
  w->len += len;
  return at;
}

void vasp_wb_put(vasp_wbuf *w, const void *data, size_t len) {
  uint8_t *at = vasp_wb_reserve(w, len);
  if (at && len) memcpy(at, data, len);
}

static void put_le(vasp_wbuf *w, uint64_t v, size_t n) {
  uint8_t *at = vasp_wb_reserve(w, n);
  if (!at) return;
  for (size_t i = 0; i < n; i++) at[i] = (uint8_t)(v >> (8 * i));
}

void vasp_wb_u8(vasp_wbuf *w, uint8_t v) { put_le(w, v, 1); }
void vasp_wb_u16(vasp_wbuf *w, uint16_t v) { put_le(w, v, 2); }
void vasp_wb_u32(vasp_wbuf *w, uint32_t v) { put_le(w, v, 4); }
void vasp_wb_u64(vasp_wbuf *w, uint64_t v) { put_le(w, v, 8); }

void vasp_wb_blob(vasp_wbuf *w, const void *data, size_t len) {
  if (len > UINT32_MAX) {
    w->failed = true;
    return;
  }
  vasp_wb_u32(w, (uint32_t)len);
  vasp_wb_put(w, data, len);
}

uint8_t *vasp_wb_take(vasp_wbuf *w, size_t *len) {
  if (w->failed) {
    vasp_wb_free(w);
    return NULL;
  }
  /* An empty writer still hands out a buffer, so NULL always means failure. */
  if (!vasp_wb_reserve(w, 0)) return NULL;
  uint8_t *p = w->p;
  *len = w->len;
  memset(w, 0, sizeof *w);
  return p;
}

void vasp_wb_free(vasp_wbuf *w) {
  vasp_wipe(w->p, w->cap);
  free(w->p);
  memset(w, 0, sizeof *w);
}

void vasp_rb_init(vasp_rbuf *r, const uint8_t *p, size_t len) {
  memset(r, 0, sizeof *r);
  r->p = p;
  r->len = len;
}

bool vasp_rb_ok(const vasp_rbuf *r) { return r->why[0] == '\0'; }

bool vasp_rb_bad(vasp_rbuf *r, const char *why) {
  if (vasp_rb_ok(r)) snprintf(r->why, sizeof r->why, "%s at byte %zu", why, r->off);
  return false;
}

const uint8_t *vasp_rb_take(vasp_rbuf *r, size_t n) {
  if (!vasp_rb_ok(r)) return NULL;
  if (n > r->len - r->off) {
    vasp_rb_bad(r, "data ends early");
    return NULL;
  }
  const uint8_t *at = r->p + r->off;
  r->off += n;
  return at;
}

bool vasp_rb_get(vasp_rbuf *r, void *out, size_t n) {
  const uint8_t *at = vasp_rb_take(r, n);
  if (!at) return false;
  if (n) memcpy(out, at, n);
  return true;
}

static bool get_le(vasp_rbuf *r, uint64_t *v, size_t n) {
  const uint8_t *at = vasp_rb_take(r, n);
  if (!at) return false;
  *v = 0;
  for (size_t i = 0; i < n; i++) *v |= (uint64_t)at[i] << (8 * i);
  return true;
}

bool vasp_rb_u8(vasp_rbuf *r, uint8_t *v) {
  uint64_t x;
  if (!get_le(r, &x, 1)) return false;
  *v = (uint8_t)x;
  return true;
}

bool vasp_rb_u16(vasp_rbuf *r, uint16_t *v) {
  uint64_t x;
  if (!get_le(r, &x, 2)) return false;
  *v = (uint16_t)x;
  return true;
}

bool vasp_rb_u32(vasp_rbuf *r, uint32_t *v) {
  uint64_t x;
  if (!get_le(r, &x, 4)) return false;
  *v = (uint32_t)x;
  return true;
}

bool vasp_rb_u64(vasp_rbuf *r, uint64_t *v) { return get_le(r, v, 8); }

bool vasp_rb_blob(vasp_rbuf *r, const uint8_t **p, size_t *len, size_t max) {
  uint32_t n;
  if (!vasp_rb_u32(r, &n)) return false;
  if (n > max) return vasp_rb_bad(r, "field longer than its limit");
  const uint8_t *at = vasp_rb_take(r, n);
  if (!at) return false;
  *p = at;
  *len = n;
  return true;
}

bool vasp_rb_count(vasp_rbuf *r, size_t *n, size_t max, size_t min_each) {
  uint32_t c;
  if (!vasp_rb_u32(r, &c)) return false;
  if (c > max) return vasp_rb_bad(r, "count over its limit");
  if (min_each && c > (r->len - r->off) / min_each)
    return vasp_rb_bad(r, "count larger than the data");
  *n = c;
  return true;
}

bool vasp_rb_end(vasp_rbuf *r) {
  if (vasp_rb_ok(r) && r->off != r->len) return vasp_rb_bad(r, "trailing data");
  return vasp_rb_ok(r);
}
