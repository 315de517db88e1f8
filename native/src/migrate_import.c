/* Import of an instance migrated from another ASP: every check in its
 * documented order (docs/quote-format.md, "Migration blob"), each with its
 * own code. */
#include "_export.h"

#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* The checks of the plain header: structure, recipient, VM. Fills uuid and id. */
static int check_header(vasp_asp *asp, const char *want, const uint8_t *blob, size_t len,
                        char uuid[VASP_UUID_LEN + 1], char id[VASP_INST_ID_HEX + 1]) {
  char raw_uuid[VASP_UUID_LEN + 1] = {0};
  if (len >= MG_HEADER_LEN) {
    memcpy(raw_uuid, blob + MG_OFF_UUID, VASP_UUID_LEN);
    memcpy(id, blob + MG_OFF_ID, VASP_INST_ID_HEX);
    id[VASP_INST_ID_HEX] = '\0';
  }
  if (len < MG_MIN_LEN || memcmp(blob, MIGRATE_MAGIC, 8) != 0 ||
      vasp_le(blob + 8, 2) != MIGRATE_VERSION || !vasp_uuid_normalize(raw_uuid, uuid) ||
      strcmp(raw_uuid, uuid) != 0 || !vasp_inst_id_ok(id) || blob[MG_OFF_EPHEMERAL] != 0x04)
    return vasp_fail(&asp->err, VASP_E_AUTH, "not a vASP migration blob (%zu bytes)", len);
  if (memcmp(blob + MG_OFF_RECIPIENT, asp->tk_id, VASP_DIGEST_LEN) != 0) {
    char to[2 * VASP_DIGEST_LEN + 1], own[2 * VASP_DIGEST_LEN + 1];
    vasp_hex(blob + MG_OFF_RECIPIENT, VASP_DIGEST_LEN, to);
    vasp_hex(asp->tk_id, VASP_DIGEST_LEN, own);
    return vasp_fail(&asp->err, VASP_E_AUTH,
                     "migration blob of VM %s is sealed to another ASP's transport key %.16s "
                     "(this ASP's is %.16s)",
                     uuid, to, own);
  }
  if (strcmp(uuid, want) != 0)
    return vasp_fail(&asp->err, VASP_E_BINDING, "migration blob is for VM %s, not %s", uuid,
                     want);
  return VASP_OK;
}

/* Decrypts the content into *plain (malloc'd, the caller wipes and frees it). */
static int open_content(vasp_asp *asp, const char *uuid, const char *id, const uint8_t *blob,
                        size_t len, uint8_t **plain, size_t *body) {
  *body = len - MG_MIN_LEN;
  if (!(*plain = malloc(*body ? *body : 1)))
    return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate %zu bytes", *body);
  EVP_PKEY *ephemeral = vasp_ec_from_point(blob + MG_OFF_EPHEMERAL);
  uint8_t key[VASP_KEY_LEN];
  const uint8_t *nonce = blob + MG_HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
  /* A point off the curve was signed as it is: the blob is no valid one. */
  int auth = ephemeral && vasp_migrate_key(asp->tk, ephemeral, blob, key)
                 ? vasp_aead_open(key, nonce, blob, MG_HEADER_LEN, NULL, 0, ct, *body,
                                  ct + *body, *plain)
                 : 0;
  vasp_wipe(key, sizeof key);
  EVP_PKEY_free(ephemeral);
  if (auth < 0)
    return vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot decrypt the migration blob of VM %s",
                         uuid);
  ERR_clear_error(); /* of a point off the curve: the blob's fault, not OpenSSL's */
  if (auth == 0)
    return vasp_fail(&asp->err, VASP_E_AUTH,
                     "migration blob of VM %s (instance %s) was altered", uuid, id);
  return VASP_OK;
}

static int check_counter(vasp_asp *asp, const char *uuid, uint64_t counter) {
  const vasp_vm_record *vm = vasp_ledger_vm(&asp->ledger, uuid);
  uint64_t newest = vm ? vm->newest : 0;
  if (counter > newest) return VASP_OK;
  return vasp_fail(&asp->err, VASP_E_ROLLBACK,
                   "migration blob of VM %s is a replayed or older transfer: counter %llu, "
                   "newest %llu",
                   uuid, (unsigned long long)counter, (unsigned long long)newest);
}

/* Everything after the signature check, on an authentic blob. */
static int import_content(vasp_asp *asp, const char *uuid, const char *id, const uint8_t *blob,
                          size_t len, vasp_instance **out) {
  uint8_t *plain = NULL;
  size_t body = 0;
  uint64_t counter = vasp_le(blob + MG_OFF_COUNTER, 8);
  vasp_instance *inst = NULL;
  vasp_rbuf r;
  int rc = open_content(asp, uuid, id, blob, len, &plain, &body);
  if (rc == VASP_OK && vasp_ledger_destroyed(&asp->ledger, id))
    rc = vasp_fail(&asp->err, VASP_E_DESTROYED, "instance %s of VM %s was destroyed", id, uuid);
  if (rc == VASP_OK) rc = check_counter(asp, uuid, counter);
  if (rc == VASP_OK && !(inst = vasp_instance_alloc(asp)))
    rc = vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate the instance");
  if (rc == VASP_OK) {
    memcpy(inst->vm_uuid, uuid, VASP_UUID_LEN + 1);
    memcpy(inst->id, id, VASP_INST_ID_HEX + 1);
    vasp_rb_init(&r, plain, body);
    if (!vasp_export_content_parse(inst, &r))
      rc = vasp_fail(&asp->err, VASP_E_AUTH, "migration blob of instance %s is malformed: %s",
                     id, r.why);
  }
  /* The instance now lives under this ASP: its certificate (same key, same
   * binding) is issued again by this AK, so a tenant's quote chains here. */
  if (rc == VASP_OK) {
    vasp_bytes_free(&inst->cert_der);
    rc = vasp_instance_certify(inst);
  }
  /* Recorded and persisted before the instance is handed out: the blob never
   * imports again, also after a restart. */
  if (rc == VASP_OK) rc = vasp_export_record(asp, &asp->err, uuid, counter, false);
  vasp_wipe(plain, body);
  free(plain);
  if (rc) {
    if (inst) vasp_instance_free(inst);
    return rc;
  }
  *out = inst;
  return VASP_OK;
}

/* The source AK certificate's key; *cert is the caller's. */
static int source_key(vasp_asp *asp, const uint8_t *der, size_t len, X509 **cert,
                      EVP_PKEY **key) {
  const unsigned char *p = der;
  *cert = der && len && len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
  ERR_clear_error();
  if (!*cert || p != der + len)
    return vasp_fail(&asp->err, VASP_E_ARG,
                     "the source AK certificate (%zu bytes) is not exactly one DER certificate",
                     len);
  if (!(*key = X509_get0_pubkey(*cert)) || !vasp_is_p256(*key))
    return vasp_fail(&asp->err, VASP_E_ARG, "the source AK certificate holds no EC P-256 key");
  return VASP_OK;
}

static int import_from(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob, size_t len,
                       const uint8_t *ak_der, size_t ak_len, vasp_instance **out) {
  char want[VASP_UUID_LEN + 1], uuid[VASP_UUID_LEN + 1], id[VASP_INST_ID_HEX + 1] = {0};
  int uuid_rc = vasp_vm_uuid_arg(&asp->err, vm_uuid, want);
  if (uuid_rc) return uuid_rc;
  if (!blob) return vasp_fail(&asp->err, VASP_E_ARG, "blob is NULL");
  X509 *cert = NULL;
  EVP_PKEY *ak = NULL;
  int rc = source_key(asp, ak_der, ak_len, &cert, &ak);
  if (rc == VASP_OK) rc = check_header(asp, want, blob, len, uuid, id);
  if (rc == VASP_OK &&
      !vasp_verify_p1363(ak, (const uint8_t *)MIGRATE_DOMAIN, MIGRATE_DOMAIN_LEN, blob,
                         len - VASP_SIG_LEN, blob + len - VASP_SIG_LEN))
    rc = vasp_fail(&asp->err, VASP_E_AUTH,
                   "migration blob of VM %s is not signed by the given source AK", uuid);
  if (rc == VASP_OK && memcmp(blob + MG_OFF_SOURCE, asp->id, VASP_ASP_ID_LEN) == 0)
    rc = vasp_fail(&asp->err, VASP_E_ARG,
                   "migration blob of VM %s was sealed by this ASP itself", uuid);
  if (rc == VASP_OK) rc = import_content(asp, uuid, id, blob, len, out);
  X509_free(cert);
  return rc;
}

int vasp_instance_import_from(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob,
                              size_t len, const uint8_t *source_ak_cert,
                              size_t source_ak_cert_len, vasp_instance **out) {
  vasp_clear(NULL);
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  int rc = import_from(asp, vm_uuid, blob, len, source_ak_cert, source_ak_cert_len, out);
  return rc ? vasp_fail_ctor(asp, rc) : VASP_OK;
}
