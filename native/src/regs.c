#include "_regs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at s[0], 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t left) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F; /* no UTF-16 surrogates */
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, hi = 0x8F; /* nothing past U+10FFFF */
  else return 0;
  if (left < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return n;
}

const char *vasp_desc_problem(const char *s, size_t len) {
  if (len > VASP_DESC_MAX) return "is longer than 1024 bytes";
  const uint8_t *u = (const uint8_t *)s;
  for (size_t i = 0; i < len;) {
    size_t n = u[i] ? utf8_seq(u + i, len - i) : 0;
    if (!n) return "is not valid UTF-8";
    i += n;
  }
  return NULL;
}

int vasp_regs_check_extend(vasp_err *err, uint32_t reg, const char *description) {
  if (reg >= VASP_NUM_REGS)
    return vasp_fail(err, VASP_E_ARG, "register %u is out of range (0..%u)", reg,
                     VASP_NUM_REGS - 1);
  if (!description) return vasp_fail(err, VASP_E_ARG, "description is NULL");
  const char *why = vasp_desc_problem(description, strnlen(description, VASP_DESC_MAX + 1));
  if (why)
    return vasp_fail(err, VASP_E_ARG, "description for register %u %s", reg, why);
  return VASP_OK;
}

int vasp_regs_extend_digests(vasp_regs *regs, vasp_err *err, uint32_t reg,
                             const uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN],
                             const char *description) {
  int rc = vasp_regs_check_extend(err, reg, description);
  if (rc) return rc;
  if (regs->n_log >= VASP_LOG_MAX)
    return vasp_fail(err, VASP_E_ARG, "event log full (%u entries); register %u not extended",
                     VASP_LOG_MAX, reg);
  if (regs->n_log == regs->cap_log) {
    size_t cap = regs->cap_log ? regs->cap_log * 2 : 16;
    vasp_log_entry *log = realloc(regs->log, cap * sizeof *log);
    if (!log) return vasp_fail(err, VASP_E_NOMEM, "cannot grow the event log");
    regs->log = log;
    regs->cap_log = cap;
  }
  char *copy = strdup(description);
  if (!copy) return vasp_fail(err, VASP_E_NOMEM, "cannot copy the description");

  /* Compute every bank first, so a failure leaves the registers unchanged. */
  uint8_t next[VASP_NUM_BANKS][VASP_DIGEST_LEN];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx != NULL;
  for (uint32_t alg = 0; ok && alg < VASP_NUM_BANKS; alg++) {
    unsigned int n = 0;
    ok = EVP_DigestInit_ex(ctx, vasp_md(alg), NULL) == 1 &&
         EVP_DigestUpdate(ctx, regs->bank[alg][reg], VASP_DIGEST_LEN) == 1 &&
         EVP_DigestUpdate(ctx, digest[alg], VASP_DIGEST_LEN) == 1 &&
         EVP_DigestFinal_ex(ctx, next[alg], &n) == 1 && n == VASP_DIGEST_LEN;
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    free(copy);
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "extend of register %u failed", reg);
  }
  vasp_log_entry *e = &regs->log[regs->n_log++];
  e->reg = reg;
  memcpy(e->digest, digest, sizeof e->digest);
  e->description = copy;
  for (uint32_t alg = 0; alg < VASP_NUM_BANKS; alg++)
    memcpy(regs->bank[alg][reg], next[alg], VASP_DIGEST_LEN);
  return VASP_OK;
}

int vasp_regs_extend(vasp_regs *regs, vasp_err *err, uint32_t reg, const uint8_t *data,
                     size_t len, const char *description) {
  int rc = vasp_regs_check_extend(err, reg, description);
  if (rc) return rc;
  if (!data && len) return vasp_fail(err, VASP_E_ARG, "data is NULL with length %zu", len);
  uint8_t digest[VASP_NUM_BANKS][VASP_DIGEST_LEN];
  for (uint32_t alg = 0; alg < VASP_NUM_BANKS; alg++)
    if (!vasp_digest(alg, data, len, digest[alg]))
      return vasp_fail_ssl(err, VASP_E_CRYPTO, "digest for register %u failed", reg);
  return vasp_regs_extend_digests(regs, err, reg, digest, description);
}

int vasp_regs_read(const vasp_regs *regs, vasp_err *err, uint32_t alg, uint32_t reg,
                   uint8_t *out) {
  if (alg >= VASP_NUM_BANKS) return vasp_fail(err, VASP_E_ARG, "unknown bank %u", alg);
  if (reg >= VASP_NUM_REGS)
    return vasp_fail(err, VASP_E_ARG, "register %u is out of range (0..%u)", reg,
                     VASP_NUM_REGS - 1);
  if (!out) return vasp_fail(err, VASP_E_ARG, "out is NULL");
  memcpy(out, regs->bank[alg][reg], VASP_DIGEST_LEN);
  return VASP_OK;
}

static void json_string(vasp_wbuf *w, const char *s) {
  vasp_wb_u8(w, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\', esc[1] = (char)*p;
      vasp_wb_put(w, esc, 2);
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      vasp_wb_put(w, esc, 6);
    } else {
      vasp_wb_u8(w, *p);
    }
  }
  vasp_wb_u8(w, '"');
}

int vasp_regs_log_json(const vasp_regs *regs, vasp_err *err, uint8_t **out, size_t *out_len) {
  if (!out || !out_len) return vasp_fail(err, VASP_E_ARG, "out or out_len is NULL");
  vasp_wbuf w = {0};
  vasp_wb_u8(&w, '[');
  for (size_t i = 0; i < regs->n_log; i++) {
    const vasp_log_entry *e = &regs->log[i];
    char head[200], sha[2 * VASP_DIGEST_LEN + 1], sm3[2 * VASP_DIGEST_LEN + 1];
    vasp_hex(e->digest[VASP_ALG_SHA256], VASP_DIGEST_LEN, sha);
    vasp_hex(e->digest[VASP_ALG_SM3], VASP_DIGEST_LEN, sm3);
    int n = snprintf(head, sizeof head,
                     "%s{\"reg\":%u,\"sha256\":\"%s\",\"sm3\":\"%s\",\"description\":",
                     i ? "," : "", e->reg, sha, sm3);
    vasp_wb_put(&w, head, (size_t)n);
    json_string(&w, e->description);
    vasp_wb_u8(&w, '}');
  }
  vasp_wb_put(&w, "]", 2); /* with a NUL, for C callers; not counted */
  size_t len;
  uint8_t *p = vasp_wb_take(&w, &len);
  if (!p) return vasp_fail(err, VASP_E_NOMEM, "cannot build the event log");
  *out = p;
  *out_len = len - 1;
  return VASP_OK;
}

void vasp_regs_write(const vasp_regs *regs, vasp_wbuf *w) {
  vasp_wb_put(w, regs->bank, sizeof regs->bank);
  vasp_wb_u32(w, (uint32_t)regs->n_log);
  for (size_t i = 0; i < regs->n_log; i++) {
    const vasp_log_entry *e = &regs->log[i];
    vasp_wb_u8(w, (uint8_t)e->reg);
    vasp_wb_put(w, e->digest, sizeof e->digest);
    size_t n = strlen(e->description);
    vasp_wb_u16(w, (uint16_t)n);
    vasp_wb_put(w, e->description, n);
  }
}

bool vasp_regs_parse(vasp_regs *regs, vasp_rbuf *r) {
  size_t n;
  if (!vasp_rb_get(r, regs->bank, sizeof regs->bank) ||
      !vasp_rb_count(r, &n, VASP_LOG_MAX, 1 + sizeof regs->log->digest + 2))
    return false;
  regs->log = n ? calloc(n, sizeof *regs->log) : NULL;
  if (n && !regs->log) return vasp_rb_bad(r, "out of memory for the event log");
  regs->cap_log = n;
  for (size_t i = 0; i < n; i++) {
    vasp_log_entry *e = &regs->log[i];
    uint8_t reg;
    uint16_t len;
    if (!vasp_rb_u8(r, &reg) || !vasp_rb_get(r, e->digest, sizeof e->digest) ||
        !vasp_rb_u16(r, &len))
      return false;
    if (reg >= VASP_NUM_REGS) return vasp_rb_bad(r, "event log register out of range");
    const uint8_t *text = vasp_rb_take(r, len);
    if (!text) return false;
    if (vasp_desc_problem((const char *)text, len))
      return vasp_rb_bad(r, "event log description malformed");
    e->reg = reg;
    e->description = malloc((size_t)len + 1);
    if (!e->description) return vasp_rb_bad(r, "out of memory for the event log");
    memcpy(e->description, text, len);
    e->description[len] = '\0';
    regs->n_log = i + 1;
  }
  return true;
}

void vasp_regs_free(vasp_regs *regs) {
  for (size_t i = 0; i < regs->n_log; i++) free(regs->log[i].description);
  free(regs->log);
  vasp_wipe(regs, sizeof *regs);
}
