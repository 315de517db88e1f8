#include "_asp_fixture.h"
#include "_asp.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

const char *fx_path(const char *dir, const char *name) {
  static char ring[8][512];
  static int next;
  char *p = ring[next++ % 8];
  snprintf(p, sizeof ring[0], "%s/%s", dir, name);
  return p;
}

vasp_asp *fx_open(const char *dir) {
  vasp_asp_opts opts = {.state_dir = dir, .secret_path = NULL};
  vasp_asp *asp = NULL;
  int rc = vasp_asp_open(&opts, &asp);
  if (rc) fprintf(stderr, "    vasp_asp_open(%s) = %d: %s\n", dir, rc, vasp_errmsg(NULL));
  return asp;
}

bool fx_read(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc(n > 0 ? (size_t)n : 1);
  *len = fread(*data, 1, (size_t)n, f);
  fclose(f);
  return *len == (size_t)n;
}

bool fx_write(const char *path, const void *data, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return false;
  bool ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, mode) == 0;
  close(fd);
  return ok;
}

bool fx_same(const char *path, const uint8_t *data, size_t len) {
  uint8_t *now;
  size_t n;
  if (!fx_read(path, &now, &n)) return false;
  bool same = n == len && memcmp(now, data, len) == 0;
  free(now);
  return same;
}

X509 *fx_x509(uint8_t *der, size_t len) {
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  vasp_free(der);
  return x;
}

X509 *fx_asp_cert(vasp_asp *asp, uint32_t kind) {
  uint8_t *der = NULL;
  size_t len = 0;
  if (vasp_asp_cert(asp, kind, &der, &len) != VASP_OK) return NULL;
  return fx_x509(der, len);
}

static uint32_t le(const uint8_t *p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint32_t)p[i] << (8 * i);
  return v;
}

bool fx_parse_quote(const uint8_t *q, size_t len, fx_quote *out) {
  if (len < 16 || memcmp(q, "VASPQT01", 8) != 0) return false;
  out->alg = (uint16_t)le(q + 8, 2);
  out->nonce_len = (uint16_t)le(q + 10, 2);
  out->reg_mask = le(q + 12, 4);
  out->n_regs = (size_t)__builtin_popcount(out->reg_mask);
  out->nonce = q + 16;
  out->regs = out->nonce + out->nonce_len;
  out->msg_len = 16 + out->nonce_len + 32 * out->n_regs;
  out->sig = q + out->msg_len;
  return len == out->msg_len + 64;
}

bool fx_verify_p1363(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t sig[64]) {
  return vasp_verify_p1363(pub, NULL, 0, msg, len, sig);
}

void fx_extend(uint32_t alg, uint8_t reg[32], const void *data, size_t len) {
  uint8_t buf[64];
  memcpy(buf, reg, 32);
  vasp_hash(alg, data, len, buf + 32);
  vasp_hash(alg, buf, 64, reg);
}

bool fx_verify_chain(X509 *ca, X509 *leaf, X509 *const *chain, size_t n) {
  if (!ca || !leaf) return false;
  X509_STORE *store = X509_STORE_new();
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  bool ok = store && untrusted && ctx && X509_STORE_add_cert(store, ca) == 1;
  for (size_t i = 0; ok && i < n; i++) ok = chain[i] && sk_X509_push(untrusted, chain[i]) > 0;
  ok = ok && X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1;
  bool verified = ok && X509_verify_cert(ctx) == 1;
  if (ok && !verified)
    fprintf(stderr, "    verify: %s\n",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_STORE_free(store);
  return verified;
}
