/* First open: the manufacturer CA, endorsement key (EK), attestation key
 * (AK) and storage key. The CA's private key exists only during this call,
 * as a manufacturer's key never lives on the device it certifies. Every
 * open: the transport key (TK), certified by the AK. */
#include "_asp.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAYS_20Y 7305L
#define DAYS_10Y 3653L

static int write_ca_pem(vasp_asp *asp, X509 *ca) {
  char *path = vasp_path_join(asp->dir, "manufacturer-ca.pem");
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  long len = 0;
  int rc = VASP_OK;
  if (!path || !bio || PEM_write_bio_X509(bio, ca) != 1 || (len = BIO_get_mem_data(bio, &pem)) <= 0)
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot encode the manufacturer CA as PEM");
  else
    rc = vasp_write_atomic(&asp->err, path, (const uint8_t *)pem, (size_t)len, 0644, NULL);
  BIO_free(bio);
  free(path);
  return rc;
}

/* Issues a certificate for a fresh key; *key and *cert are the caller's. */
static int issue(vasp_asp *asp, vasp_cert_spec *spec, EVP_PKEY **key, X509 **cert) {
  *key = vasp_ec_generate();
  if (!*key) return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot generate a P-256 key");
  spec->subject_key = *key;
  if (!spec->issuer_key) spec->issuer_key = *key;
  return vasp_cert_issue(&asp->err, spec, cert);
}

int vasp_asp_provision(vasp_asp *asp) {
  EVP_PKEY *ca_key = NULL;
  X509 *ca = NULL, *ek = NULL;
  char cn[64];
  uint8_t ek_id[VASP_ASP_ID_LEN];
  char id_hex[2 * VASP_ASP_ID_LEN + 1];
  vasp_cert_spec ca_spec = {
      .cn = "vASP Local Manufacturer CA", .days = DAYS_20Y,
      .basic_constraints = "critical,CA:TRUE", .key_usage = "critical,keyCertSign,cRLSign"};
  int rc = issue(asp, &ca_spec, &ca_key, &ca);
  if (rc == VASP_OK) {
    /* The EK's name carries the ASP ID, known only once the key exists. */
    asp->ek = vasp_ec_generate();
    if (!asp->ek || !vasp_spki_sha256(asp->ek, ek_id))
      rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot generate the endorsement key");
  }
  if (rc == VASP_OK) {
    vasp_hex(ek_id, sizeof ek_id, id_hex);
    snprintf(cn, sizeof cn, "vASP EK %.16s", id_hex);
    vasp_cert_spec ek_spec = {
        .cn = cn, .subject_key = asp->ek, .issuer = ca, .issuer_key = ca_key, .days = DAYS_20Y,
        .basic_constraints = "critical,CA:TRUE,pathlen:1",
        .key_usage = "critical,keyCertSign,digitalSignature"};
    rc = vasp_cert_issue(&asp->err, &ek_spec, &ek);
  }
  EVP_PKEY_free(ca_key); /* frees (and clears) the CA private key */
  if (rc == VASP_OK) {
    snprintf(cn, sizeof cn, "vASP AK %.16s", id_hex);
    vasp_cert_spec ak_spec = {
        .cn = cn, .issuer = ek, .issuer_key = asp->ek, .days = DAYS_10Y,
        .basic_constraints = "critical,CA:TRUE,pathlen:0",
        .key_usage = "critical,keyCertSign,digitalSignature"};
    rc = issue(asp, &ak_spec, &asp->ak, &asp->ak_cert);
  }
  if (rc == VASP_OK && RAND_priv_bytes(asp->storage_key, sizeof asp->storage_key) != 1)
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot draw the storage key");
  if (rc == VASP_OK &&
      (!vasp_cert_to_der(ca, &asp->ca_der) || !vasp_cert_to_der(ek, &asp->ek_der) ||
       !vasp_cert_to_der(asp->ak_cert, &asp->ak_der)))
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot encode the certificates");
  if (rc == VASP_OK) {
    memcpy(asp->id, ek_id, sizeof ek_id);
    rc = write_ca_pem(asp, ca);
  }
  X509_free(ca);
  X509_free(ek);
  return rc;
}

int vasp_asp_transport_key(vasp_asp *asp) {
  char cn[64], id_hex[2 * VASP_ASP_ID_LEN + 1];
  X509 *cert = NULL;
  vasp_hex(asp->id, sizeof asp->id, id_hex);
  snprintf(cn, sizeof cn, "vASP transport key %.16s", id_hex);
  vasp_cert_spec spec = {
      .cn = cn, .issuer = asp->ak_cert, .issuer_key = asp->ak, .days = DAYS_10Y,
      .basic_constraints = "critical,CA:FALSE", .key_usage = "critical,keyAgreement"};
  int rc = issue(asp, &spec, &asp->tk, &cert);
  if (rc != VASP_OK && asp->tk) {
    /* The key exists, so the AK, loaded from the state file, could not
     * issue: that state is corrupt, whatever its seal says. */
    char why[VASP_ERRMSG_LEN];
    snprintf(why, sizeof why, "%s", asp->err.msg);
    return vasp_fail(&asp->err, VASP_E_STATE, "the AK certificate in %s cannot issue: %s",
                     asp->state_path, why);
  }
  if (rc == VASP_OK &&
      (!vasp_cert_to_der(cert, &asp->tk_der) || !vasp_spki_sha256(asp->tk, asp->tk_id)))
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot encode the transport key certificate");
  X509_free(cert);
  return rc;
}
