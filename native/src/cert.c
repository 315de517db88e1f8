/* X.509 certificates of the key hierarchy and the instance binding. */
#include "_asp.h"

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>

/* OID of the binding extension: under the UUID arc 2.25, owned by vASP. */
#define VASP_BINDING_OID "2.25.115277701154737049670922511128754870117.1"

/* Backdated so a verifier whose clock is a little behind accepts a fresh
 * certificate. */
#define NOT_BEFORE_SKEW_SECONDS (-300L)

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
  bool ok = ext && X509_add_ext(x, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

static bool set_serial(X509 *x) {
  uint8_t raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  /* Positive (top bit clear) and exactly 16 bytes long (next bit set). */
  raw[0] = (uint8_t)((raw[0] & 0x7F) | 0x40);
  BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
  ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
  bool ok = serial && X509_set_serialNumber(x, serial) == 1;
  ASN1_INTEGER_free(serial);
  BN_free(bn);
  return ok;
}

static bool set_names(X509 *x, const vasp_cert_spec *s) {
  X509_NAME *name = X509_NAME_new();
  bool ok = name &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)s->cn, -1, -1, 0) == 1 &&
            X509_set_subject_name(x, name) == 1 &&
            X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : name) == 1;
  X509_NAME_free(name);
  return ok;
}

static bool set_extensions(X509 *x, const vasp_cert_spec *s) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, s->issuer ? s->issuer : x, x, NULL, NULL, 0);
  if (!s->issuer && X509V3_set_issuer_pkey(&ctx, s->issuer_key) != 1) return false;
  /* The subject key identifier goes first: the authority key identifier of
   * a self-signed certificate is taken from it. */
  return add_ext(x, &ctx, NID_basic_constraints, s->basic_constraints) &&
         add_ext(x, &ctx, NID_key_usage, s->key_usage) &&
         add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
         add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
         (!s->subject_alt_name ||
          add_ext(x, &ctx, NID_subject_alt_name, s->subject_alt_name)) &&
         (!s->extra || X509_add_ext(x, s->extra, -1) == 1);
}

int vasp_cert_issue(vasp_err *err, const vasp_cert_spec *s, X509 **out) {
  X509 *x = X509_new();
  bool ok = x && X509_set_version(x, X509_VERSION_3) == 1 && set_serial(x) &&
            X509_gmtime_adj(X509_getm_notBefore(x), NOT_BEFORE_SKEW_SECONDS) &&
            X509_time_adj_ex(X509_getm_notAfter(x), (int)s->days, 0, NULL) &&
            set_names(x, s) && X509_set_pubkey(x, s->subject_key) == 1 &&
            set_extensions(x, s) &&
            X509_sign(x, s->issuer_key, vasp_md(VASP_ALG_SHA256)) > 0;
  if (!ok) {
    X509_free(x);
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot issue the certificate \"%s\"", s->cn);
  }
  *out = x;
  return VASP_OK;
}

/* DER of the binding value (short-form lengths suffice: 106 content bytes):
 *   SEQUENCE { vmUuid UTF8String, instanceId UTF8String, configDigest OCTET STRING } */
#define BINDING_DER_LEN (2 + 2 + VASP_UUID_LEN + 2 + VASP_INST_ID_HEX + 2 + VASP_DIGEST_LEN)

static void binding_der(const char *vm_uuid, const char *inst_id, const uint8_t *digest,
                        uint8_t out[BINDING_DER_LEN]) {
  uint8_t *p = out;
  *p++ = 0x30, *p++ = BINDING_DER_LEN - 2;
  *p++ = 0x0C, *p++ = VASP_UUID_LEN;
  memcpy(p, vm_uuid, VASP_UUID_LEN), p += VASP_UUID_LEN;
  *p++ = 0x0C, *p++ = VASP_INST_ID_HEX;
  memcpy(p, inst_id, VASP_INST_ID_HEX), p += VASP_INST_ID_HEX;
  *p++ = 0x04, *p++ = VASP_DIGEST_LEN;
  memcpy(p, digest, VASP_DIGEST_LEN);
}

int vasp_binding_extension(vasp_err *err, const char *vm_uuid, const char *inst_id,
                           const uint8_t config_digest[VASP_DIGEST_LEN],
                           X509_EXTENSION **out) {
  _Static_assert(BINDING_DER_LEN - 2 < 128, "binding must fit short-form lengths");
  uint8_t der[BINDING_DER_LEN];
  binding_der(vm_uuid, inst_id, config_digest, der);
  ASN1_OBJECT *oid = OBJ_txt2obj(VASP_BINDING_OID, 1);
  ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
  X509_EXTENSION *ext = NULL;
  if (oid && value && ASN1_OCTET_STRING_set(value, der, sizeof der) == 1)
    ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, value);
  ASN1_OBJECT_free(oid);
  ASN1_OCTET_STRING_free(value);
  if (!ext) return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot build the binding extension");
  *out = ext;
  return VASP_OK;
}
