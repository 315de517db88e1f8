/* Import of an exported instance: every check in its documented order,
 * each with its own code. */
#include "_export.h"

#include <stdlib.h>
#include <string.h>

bool vasp_export_content_parse(vasp_instance *inst, vasp_rbuf *r) {
  uint16_t version = 0;
  const uint8_t *key = NULL, *cert = NULL;
  size_t key_len = 0, cert_len = 0;
  if (!vasp_rb_u16(r, &version)) return false;
  if (version != CONTENT_VERSION) return vasp_rb_bad(r, "unknown content version");
  if (!vasp_rb_blob(r, &key, &key_len, KEY_DER_MAX) ||
      !vasp_rb_blob(r, &cert, &cert_len, CERT_DER_MAX) ||
      !vasp_rb_get(r, inst->config_digest, VASP_DIGEST_LEN) ||
      !vasp_regs_parse(&inst->regs, r) || !vasp_rb_end(r))
    return false;
  if (!(inst->key = vasp_key_parse(key, key_len))) return vasp_rb_bad(r, "key does not parse");
  if (!vasp_bytes_dup(&inst->cert_der, cert, cert_len)) return vasp_rb_bad(r, "out of memory");
  const unsigned char *p = cert;
  X509 *x = d2i_X509(NULL, &p, (long)cert_len);
  bool match = x && p == cert + cert_len && X509_check_private_key(x, inst->key) == 1;
  X509_free(x);
  return match || vasp_rb_bad(r, "certificate does not parse or match the key");
}

/* The plain header's checks; fills vm_uuid and id. */
static int check_header(vasp_asp *asp, const char *want_uuid, const uint8_t *blob, size_t len,
                        char uuid[VASP_UUID_LEN + 1], char id[VASP_INST_ID_HEX + 1]) {
  char raw_uuid[VASP_UUID_LEN + 1] = {0};
  if (len >= HEADER_LEN) {
    memcpy(raw_uuid, blob + OFF_UUID, VASP_UUID_LEN);
    memcpy(id, blob + OFF_ID, VASP_INST_ID_HEX);
    id[VASP_INST_ID_HEX] = '\0';
  }
  if (len < HEADER_LEN + VASP_NONCE_LEN + VASP_TAG_LEN || memcmp(blob, EXPORT_MAGIC, 8) != 0 ||
      vasp_le(blob + 8, 2) != EXPORT_VERSION || vasp_le(blob + OFF_FLAGS, 4) & ~VASP_SNAPSHOT ||
      !vasp_uuid_normalize(raw_uuid, uuid) || strcmp(raw_uuid, uuid) != 0 ||
      !vasp_inst_id_ok(id))
    return vasp_fail(&asp->err, VASP_E_AUTH, "not a vASP export blob (%zu bytes)", len);
  if (memcmp(blob + OFF_ASP_ID, asp->id, VASP_ASP_ID_LEN) != 0) {
    char other[2 * VASP_ASP_ID_LEN + 1];
    vasp_hex(blob + OFF_ASP_ID, VASP_ASP_ID_LEN, other);
    return vasp_fail(&asp->err, VASP_E_AUTH, "blob was sealed by another ASP %s", other);
  }
  if (strcmp(uuid, want_uuid) != 0)
    return vasp_fail(&asp->err, VASP_E_BINDING, "blob is for VM %s, not %s", uuid, want_uuid);
  return VASP_OK;
}

static int check_counter(vasp_asp *asp, const char *uuid, uint64_t counter, uint32_t flags) {
  vasp_vm_record *vm = vasp_ledger_vm(&asp->ledger, uuid);
  uint64_t newest = vm ? vm->newest : 0;
  if (counter >= newest) return VASP_OK;
  bool snapshot = flags & VASP_SNAPSHOT;
  if (snapshot && vasp_vm_snapshot_index(vm, counter) >= 0) return VASP_OK;
  return vasp_fail(&asp->err, VASP_E_ROLLBACK,
                   "blob counter %llu is older than the newest export %llu of VM %s%s",
                   (unsigned long long)counter, (unsigned long long)newest, uuid,
                   snapshot ? ", and it is not a registered snapshot"
                            : " (a registered snapshot must be imported with VASP_SNAPSHOT)");
}

static int import(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob, size_t len,
                  uint32_t flags, vasp_instance **out) {
  char want[VASP_UUID_LEN + 1], uuid[VASP_UUID_LEN + 1], id[VASP_INST_ID_HEX + 1] = {0};
  int uuid_rc = vasp_vm_uuid_arg(&asp->err, vm_uuid, want);
  if (uuid_rc) return uuid_rc;
  if (!blob) return vasp_fail(&asp->err, VASP_E_ARG, "blob is NULL");
  if (flags & ~VASP_SNAPSHOT) return vasp_fail(&asp->err, VASP_E_ARG, "unknown flags 0x%x", flags);
  int rc = check_header(asp, want, blob, len, uuid, id);
  if (rc) return rc;

  size_t body = len - HEADER_LEN - VASP_NONCE_LEN - VASP_TAG_LEN;
  uint8_t *plain = malloc(body ? body : 1);
  if (!plain) return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate %zu bytes", body);
  const uint8_t *nonce = blob + HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
  int auth = vasp_aead_open(asp->storage_key, nonce, blob, HEADER_LEN, NULL, 0, ct, body,
                            ct + body, plain);
  uint64_t counter = vasp_le(blob + OFF_COUNTER, 8);
  vasp_instance *inst = NULL;
  vasp_rbuf r;
  if (auth < 0)
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot decrypt the blob of VM %s", uuid);
  else if (auth == 0)
    rc = vasp_fail(&asp->err, VASP_E_AUTH, "blob was altered (VM %s, instance %s)", uuid, id);
  else if (vasp_ledger_destroyed(&asp->ledger, id))
    rc = vasp_fail(&asp->err, VASP_E_DESTROYED, "instance %s of VM %s was destroyed", id, uuid);
  else if ((rc = check_counter(asp, uuid, counter, flags)) == VASP_OK) {
    if (!(inst = vasp_instance_alloc(asp))) {
      rc = vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate the instance");
    } else {
      memcpy(inst->vm_uuid, uuid, sizeof uuid);
      memcpy(inst->id, id, sizeof id);
      vasp_rb_init(&r, plain, body);
      if (!vasp_export_content_parse(inst, &r))
        rc = vasp_fail(&asp->err, VASP_E_AUTH, "blob of instance %s is malformed: %s", id,
                       r.why);
    }
  }
  vasp_wipe(plain, body);
  free(plain);
  if (rc) {
    if (inst) vasp_instance_free(inst);
    return rc;
  }
  *out = inst;
  return VASP_OK;
}

int vasp_instance_import(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob, size_t len,
                         uint32_t flags, vasp_instance **out) {
  vasp_clear(NULL);
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  int rc = import(asp, vm_uuid, blob, len, flags, out);
  return rc ? vasp_fail_ctor(asp, rc) : VASP_OK;
}
