/* Export of an instance to another ASP: sealed to that ASP's transport key
 * (ECDH with an ephemeral key, HKDF-SHA256, AES-256-GCM) and signed by this
 * ASP's AK. Layout in docs/quote-format.md, "Migration blob". */
#include "_export.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>

bool vasp_migrate_key(EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t *header,
                      uint8_t key[VASP_KEY_LEN]) {
  uint8_t secret[VASP_ECDH_LEN], info[MIGRATE_DOMAIN_LEN + MG_HEADER_LEN];
  memcpy(info, MIGRATE_DOMAIN, MIGRATE_DOMAIN_LEN);
  memcpy(info + MIGRATE_DOMAIN_LEN, header, MG_HEADER_LEN);
  bool ok = vasp_ecdh(priv, peer, secret) &&
            vasp_hkdf_sha256(secret, sizeof secret, header + MG_OFF_RECIPIENT, VASP_DIGEST_LEN,
                             info, sizeof info, key, VASP_KEY_LEN);
  vasp_wipe(secret, sizeof secret);
  if (!ok) vasp_wipe(key, VASP_KEY_LEN);
  return ok;
}

int vasp_migrate_seal(vasp_err *err, vasp_asp *source, EVP_PKEY *tk,
                      const uint8_t tk_id[VASP_DIGEST_LEN], const char *vm_uuid,
                      const char *inst_id, uint64_t counter, const uint8_t *plain, size_t len,
                      vasp_wbuf *blob) {
  uint8_t point[VASP_EC_POINT_LEN], key[VASP_KEY_LEN];
  EVP_PKEY *ephemeral = vasp_ec_generate();
  int rc = VASP_OK;
  if (!ephemeral || !vasp_ec_public_point(ephemeral, point)) {
    rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot generate the ephemeral key");
  } else {
    vasp_wb_put(blob, MIGRATE_MAGIC, 8);
    vasp_wb_u16(blob, MIGRATE_VERSION);
    vasp_wb_put(blob, source->id, VASP_ASP_ID_LEN);
    vasp_wb_put(blob, tk_id, VASP_DIGEST_LEN);
    vasp_wb_put(blob, vm_uuid, VASP_UUID_LEN);
    vasp_wb_put(blob, inst_id, VASP_INST_ID_HEX);
    vasp_wb_u64(blob, counter);
    vasp_wb_put(blob, point, VASP_EC_POINT_LEN);
    if (!vasp_wb_reserve(blob, VASP_NONCE_LEN + len + VASP_TAG_LEN + VASP_SIG_LEN)) {
      rc = vasp_fail(err, VASP_E_NOMEM, "cannot allocate the migration blob");
    } else {
      uint8_t *nonce = blob->p + MG_HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
      uint8_t *sig = ct + len + VASP_TAG_LEN;
      if (!vasp_migrate_key(ephemeral, tk, blob->p, key) ||
          RAND_bytes(nonce, VASP_NONCE_LEN) != 1 ||
          !vasp_aead_seal(key, nonce, blob->p, MG_HEADER_LEN, NULL, 0, plain, len, ct,
                          ct + len) ||
          !vasp_sign_p1363(source->ak, (const uint8_t *)MIGRATE_DOMAIN, MIGRATE_DOMAIN_LEN,
                           blob->p, (size_t)(sig - blob->p), sig))
        rc = vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot seal instance %s to the transport key",
                           inst_id);
    }
  }
  vasp_wipe(key, sizeof key);
  EVP_PKEY_free(ephemeral); /* clears the ephemeral private key */
  if (rc) vasp_wb_free(blob);
  return rc;
}

/* The recipient: its transport key certificate, parsed and checked. */
typedef struct recipient {
  X509 *cert;
  EVP_PKEY *tk; /* borrowed from cert */
  uint8_t id[VASP_DIGEST_LEN];
  char hex[2 * VASP_DIGEST_LEN + 1];
} recipient;

/* What the caller's chain verification does not tell: the certificate is
 * one DER certificate and nothing more, for a P-256 key agreement key, and
 * not this ASP's own (an instance moves within an ASP by local export). */
static int parse_recipient(vasp_instance *inst, const uint8_t *der, size_t len, recipient *to) {
  const char *vm = inst->vm_uuid;
  if (!der || len == 0 || len > LONG_MAX)
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s: the transport key certificate is empty", vm);
  const unsigned char *p = der;
  to->cert = d2i_X509(NULL, &p, (long)len);
  uint32_t ext = to->cert ? X509_get_extension_flags(to->cert) : 0;
  ERR_clear_error();
  if (!to->cert || p != der + len || ext & EXFLAG_INVALID)
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s: the transport key certificate (%zu bytes) is not "
                     "exactly one DER certificate",
                     vm, len);
  to->tk = X509_get0_pubkey(to->cert);
  if (!to->tk || !vasp_is_p256(to->tk))
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s: the transport key certificate holds no EC P-256 key",
                     vm);
  if (!(ext & EXFLAG_KUSAGE) || !(X509_get_key_usage(to->cert) & KU_KEY_AGREEMENT))
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s: the key usage of the transport key certificate "
                     "lacks keyAgreement",
                     vm);
  if (!vasp_spki_sha256(to->tk, to->id))
    return vasp_fail_ssl(&inst->err, VASP_E_CRYPTO, "cannot hash the transport key");
  vasp_hex(to->id, sizeof to->id, to->hex);
  if (memcmp(to->id, inst->asp->tk_id, VASP_DIGEST_LEN) == 0)
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s to transport key %.16s: it is this ASP's own (use "
                     "vasp_instance_export)",
                     vm, to->hex);
  return VASP_OK;
}

/* A vasp_export_sealer; ctx is the recipient. */
static int seal_to(vasp_instance *inst, uint64_t counter, void *ctx, vasp_wbuf *blob) {
  const recipient *to = ctx;
  vasp_wbuf plain = {0};
  int rc = vasp_export_content_write(inst, &plain)
               ? vasp_migrate_seal(&inst->err, inst->asp, to->tk, to->id, inst->vm_uuid,
                                   inst->id, counter, plain.p, plain.len, blob)
               : vasp_fail_ssl(&inst->err, VASP_E_NOMEM, "cannot encode instance %s", inst->id);
  vasp_wb_free(&plain);
  return rc;
}

int vasp_instance_export_to(vasp_instance *inst, const uint8_t *tk_cert, size_t tk_cert_len,
                            uint64_t after, uint8_t **out, size_t *out_len, uint64_t *counter) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  if (!out || !out_len || !counter)
    return vasp_fail(&inst->err, VASP_E_ARG, "out, out_len or counter is NULL");
  recipient to = {0};
  int rc = parse_recipient(inst, tk_cert, tk_cert_len, &to);
  if (rc == VASP_OK) rc = vasp_export_run(inst, false, after, seal_to, &to, out, out_len, counter);
  X509_free(to.cert);
  return rc;
}
