/* EC P-256 keys and DER encodings of keys and certificates. */
#include "_asp.h"

#include <openssl/x509.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *vasp_ec_generate(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }

bool vasp_key_write(EVP_PKEY *key, vasp_wbuf *w) {
  unsigned char *der = NULL;
  int n = i2d_PrivateKey(key, &der);
  if (n <= 0) return false;
  vasp_wb_blob(w, der, (size_t)n);
  OPENSSL_clear_free(der, (size_t)n);
  return !w->failed;
}

EVP_PKEY *vasp_key_parse(const uint8_t *der, size_t len) {
  if (len > LONG_MAX) return NULL;
  const unsigned char *p = der;
  EVP_PKEY *key = d2i_AutoPrivateKey_ex(NULL, &p, (long)len, NULL, NULL);
  if (key && (p != der + len || !EVP_PKEY_is_a(key, "EC"))) {
    EVP_PKEY_free(key);
    return NULL;
  }
  return key;
}

bool vasp_cert_to_der(X509 *cert, vasp_bytes *out) {
  int n = i2d_X509(cert, NULL);
  if (n <= 0) return false;
  uint8_t *buf = malloc((size_t)n), *p = buf;
  if (!buf) return false;
  if (i2d_X509(cert, &p) != n) {
    free(buf);
    return false;
  }
  out->p = buf;
  out->len = (size_t)n;
  return true;
}

bool vasp_spki_sha256(EVP_PKEY *key, uint8_t out[VASP_DIGEST_LEN]) {
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return false;
  bool ok = vasp_digest(VASP_ALG_SHA256, der, (size_t)n, out);
  OPENSSL_free(der);
  return ok;
}

void vasp_bytes_free(vasp_bytes *b) {
  vasp_wipe(b->p, b->len);
  free(b->p);
  b->p = NULL;
  b->len = 0;
}

bool vasp_bytes_dup(vasp_bytes *b, const uint8_t *p, size_t len) {
  b->p = malloc(len ? len : 1);
  if (!b->p) return false;
  if (len) memcpy(b->p, p, len);
  b->len = len;
  return true;
}
