/* vasp_asp_sign: what exactly the attestation key signs, checked with OpenSSL
 * against the AK certificate's public key. */
#include "_asp_fixture.h"

#include <stdlib.h>

#define DOMAIN "VASPSG01"

/* "VASPSG01" || data, malloc'd. */
static uint8_t *prefixed(const uint8_t *data, size_t len) {
  uint8_t *msg = malloc(8 + len);
  memcpy(msg, DOMAIN, 8);
  if (len) memcpy(msg + 8, data, len);
  return msg;
}

TEST(asp_sign_covers_the_domain_prefix_and_the_data_and_verifies_with_the_ak) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  const uint8_t data[] = "{\"head\":\"ab\",\"seq\":1000}";
  const size_t len = sizeof data - 1;
  uint8_t sig[64], again[64];
  int rc = vasp_asp_sign(a, data, len, sig);
  int rc2 = vasp_asp_sign(a, data, len, again);
  X509 *ak = fx_asp_cert(a, VASP_CERT_AK), *ek = fx_asp_cert(a, VASP_CERT_EK);
  vasp_asp_close(a);
  CHECK(rc == VASP_OK && rc2 == VASP_OK && ak && ek);
  uint8_t *msg = prefixed(data, len);
  EVP_PKEY *pub = X509_get0_pubkey(ak);
  bool verifies = fx_verify_p1363(pub, msg, 8 + len, sig);
  bool again_verifies = fx_verify_p1363(pub, msg, 8 + len, again);
  bool plain = fx_verify_p1363(pub, data, len, sig);
  bool by_ek = fx_verify_p1363(X509_get0_pubkey(ek), msg, 8 + len, sig);
  msg[8] ^= 1;
  bool altered = fx_verify_p1363(pub, msg, 8 + len, sig);
  msg[8] ^= 1;
  memcpy(msg, "VASPQT01", 8);
  bool as_quote = fx_verify_p1363(pub, msg, 8 + len, sig);
  free(msg);
  X509_free(ak);
  X509_free(ek);
  CHECK(verifies && again_verifies);
  /* ECDSA draws a fresh nonce each time: two signatures of one message differ. */
  CHECK(memcmp(sig, again, 64) != 0);
  CHECK(!plain);
  CHECK(!by_ek);
  CHECK(!altered);
  CHECK(!as_quote);
}

TEST(asp_sign_of_empty_data_covers_the_domain_prefix_alone) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint8_t sig[64];
  int rc = vasp_asp_sign(a, NULL, 0, sig);
  X509 *ak = fx_asp_cert(a, VASP_CERT_AK);
  vasp_asp_close(a);
  CHECK(rc == VASP_OK && ak);
  bool verifies = fx_verify_p1363(X509_get0_pubkey(ak), (const uint8_t *)DOMAIN, 8, sig);
  X509_free(ak);
  CHECK(verifies);
}

TEST(asp_sign_refuses_null_arguments_and_leaves_the_output_untouched) {
  vasp_asp *a = fx_open(test_tmpdir());
  CHECK(a);
  uint8_t sig[64], untouched[64];
  memset(sig, 0xa5, sizeof sig);
  memcpy(untouched, sig, sizeof sig);
  int null_data = vasp_asp_sign(a, NULL, 5, sig);
  bool data_named = strstr(vasp_errmsg(a), "data is NULL but len is 5") != NULL;
  int null_out = vasp_asp_sign(a, (const uint8_t *)"x", 1, NULL);
  bool out_named = strstr(vasp_errmsg(a), "sig_out is NULL") != NULL;
  int null_asp = vasp_asp_sign(NULL, (const uint8_t *)"x", 1, sig);
  bool asp_named = strstr(vasp_errmsg(NULL), "asp is NULL") != NULL;
  vasp_asp_close(a);
  CHECK(null_data == VASP_E_ARG && data_named);
  CHECK(null_out == VASP_E_ARG && out_named);
  CHECK(null_asp == VASP_E_ARG && asp_named);
  CHECK(memcmp(sig, untouched, sizeof sig) == 0);
}
