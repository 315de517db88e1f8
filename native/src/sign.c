/* Signatures with the ASP's keys: ECDSA P-256 over SHA-256, written raw
 * r || s (IEEE P1363), the form Web Crypto verifies. Quotes sign through the
 * same helper; vasp_asp_sign signs caller data under its own domain prefix.
 * Verification here is for migration blobs, signed by another ASP's AK. */
#include "_asp.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <string.h>

/* Neither a quote ("VASPQT01" …) nor a certificate (DER, 0x30 …) starts with
 * these bytes, so a signature from vasp_asp_sign never passes for either. */
#define SIGN_DOMAIN "VASPSG01"
#define SIGN_DOMAIN_LEN 8u

bool vasp_sign_p1363(EVP_PKEY *key, const uint8_t *domain, size_t domain_len,
                     const uint8_t *msg, size_t len, uint8_t out[VASP_SIG_LEN]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[80]; /* a P-256 DER signature is at most 72 bytes */
  size_t der_len = sizeof der;
  bool ok = ctx && EVP_DigestSignInit(ctx, NULL, vasp_md(VASP_ALG_SHA256), NULL, key) == 1 &&
            (domain_len == 0 || EVP_DigestSignUpdate(ctx, domain, domain_len) == 1) &&
            (len == 0 || EVP_DigestSignUpdate(ctx, msg, len) == 1) &&
            EVP_DigestSignFinal(ctx, der, &der_len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return false;
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  ok = sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
       BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  return ok;
}

bool vasp_verify_p1363(EVP_PKEY *key, const uint8_t *domain, size_t domain_len,
                       const uint8_t *msg, size_t len, const uint8_t sig[VASP_SIG_LEN]) {
  ECDSA_SIG *s = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
  unsigned char *der = NULL;
  int der_len = 0;
  if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
    r = ss = NULL; /* owned by s now */
    der_len = i2d_ECDSA_SIG(s, &der);
  }
  BN_free(r);
  BN_free(ss);
  ECDSA_SIG_free(s);
  EVP_MD_CTX *ctx = der_len > 0 ? EVP_MD_CTX_new() : NULL;
  bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, vasp_md(VASP_ALG_SHA256), NULL, key) == 1 &&
            (domain_len == 0 || EVP_DigestVerifyUpdate(ctx, domain, domain_len) == 1) &&
            (len == 0 || EVP_DigestVerifyUpdate(ctx, msg, len) == 1) &&
            EVP_DigestVerifyFinal(ctx, der, (size_t)der_len) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  /* A bad signature queues errors that are no failure of this library. */
  if (!ok) ERR_clear_error();
  return ok;
}

int vasp_asp_sign(vasp_asp *asp, const uint8_t *data, size_t len, uint8_t *sig_out) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  if (!data && len)
    return vasp_fail(&asp->err, VASP_E_ARG, "data is NULL but len is %zu", len);
  if (!sig_out) return vasp_fail(&asp->err, VASP_E_ARG, "sig_out is NULL");
  uint8_t sig[VASP_SIG_LEN];
  if (!vasp_sign_p1363(asp->ak, (const uint8_t *)SIGN_DOMAIN, SIGN_DOMAIN_LEN, data, len, sig))
    return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot sign %zu bytes with the AK", len);
  /* Written only on success, as every out-parameter. */
  memcpy(sig_out, sig, sizeof sig);
  return VASP_OK;
}
