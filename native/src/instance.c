/* vASP instances: creation with a certificate binding them to one VM, their
 * registers and quotes, close and destroy. Export and import: export.c. */
#include "_asp.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INSTANCE_DAYS 365L

vasp_instance *vasp_instance_alloc(vasp_asp *asp) {
  vasp_instance *inst = calloc(1, sizeof *inst);
  if (inst) inst->asp = asp;
  return inst;
}

void vasp_instance_free(vasp_instance *inst) {
  EVP_PKEY_free(inst->key);
  vasp_bytes_free(&inst->cert_der);
  vasp_regs_free(&inst->regs);
  vasp_wipe(inst, sizeof *inst);
  free(inst);
}

int vasp_fail_ctor(vasp_asp *asp, int rc) {
  return vasp_fail(NULL, rc, "%s", asp->err.msg);
}

int vasp_instance_certify(vasp_instance *inst) {
  vasp_asp *asp = inst->asp;
  X509_EXTENSION *binding = NULL;
  X509 *cert = NULL;
  char cn[64], san[64];
  snprintf(cn, sizeof cn, "vASP instance %s", inst->id);
  snprintf(san, sizeof san, "URI:urn:uuid:%s", inst->vm_uuid);
  vasp_cert_spec spec = {.cn = cn, .subject_key = inst->key, .issuer = asp->ak_cert,
                         .issuer_key = asp->ak, .days = INSTANCE_DAYS,
                         .basic_constraints = "critical,CA:FALSE",
                         .key_usage = "critical,digitalSignature", .subject_alt_name = san};
  int rc = vasp_binding_extension(&asp->err, inst->vm_uuid, inst->id, inst->config_digest,
                                  &binding);
  if (rc == VASP_OK) {
    spec.extra = binding;
    rc = vasp_cert_issue(&asp->err, &spec, &cert);
  }
  if (rc == VASP_OK && !vasp_cert_to_der(cert, &inst->cert_der))
    rc = vasp_fail_ssl(&asp->err, VASP_E_CRYPTO, "cannot encode the instance certificate");
  X509_EXTENSION_free(binding);
  X509_free(cert);
  return rc;
}

/* Fills a fresh instance: VM UUID, random ID, key, certificate. */
static int create(vasp_instance *inst, const char *vm_uuid, const uint8_t *config_digest) {
  vasp_err *err = &inst->asp->err;
  uint8_t id[VASP_INST_ID_HEX / 2];
  int uuid_rc = vasp_vm_uuid_arg(err, vm_uuid, inst->vm_uuid);
  if (uuid_rc) return uuid_rc;
  if (!config_digest) return vasp_fail(err, VASP_E_ARG, "config_digest is NULL");
  if (RAND_bytes(id, sizeof id) != 1 || !(inst->key = vasp_ec_generate()))
    return vasp_fail_ssl(err, VASP_E_CRYPTO, "cannot generate the instance key");
  vasp_hex(id, sizeof id, inst->id);
  memcpy(inst->config_digest, config_digest, VASP_DIGEST_LEN);
  return vasp_instance_certify(inst);
}

int vasp_instance_create(vasp_asp *asp, const char *vm_uuid, const uint8_t *config_digest,
                         vasp_instance **out) {
  vasp_clear(NULL);
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  vasp_instance *inst = vasp_instance_alloc(asp);
  if (!inst)
    return vasp_fail_ctor(asp, vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate the instance"));
  int rc = create(inst, vm_uuid, config_digest);
  if (rc != VASP_OK) {
    vasp_instance_free(inst);
    return vasp_fail_ctor(asp, rc);
  }
  *out = inst;
  return VASP_OK;
}

void vasp_instance_close(vasp_instance *inst) {
  if (inst) vasp_instance_free(inst);
}

int vasp_instance_destroy(vasp_instance *inst) {
  vasp_clear(NULL);
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_asp *asp = inst->asp;
  vasp_clear(&asp->err);
  char id[VASP_INST_ID_HEX + 1];
  memcpy(id, inst->id, sizeof id);
  vasp_instance_free(inst);
  if (vasp_ledger_destroyed(&asp->ledger, id)) return VASP_OK;
  if (!vasp_ledger_add_destroyed(&asp->ledger, id))
    return vasp_fail_ctor(asp, vasp_fail(&asp->err, VASP_E_NOMEM,
                                         "cannot record instance %s as destroyed", id));
  /* A failed write keeps the record in memory: this ASP handle still
   * refuses the instance's blobs, and the next write persists it. */
  int rc = vasp_state_save(asp, &asp->err, NULL);
  return rc ? vasp_fail_ctor(asp, rc) : VASP_OK;
}

int vasp_instance_id(vasp_instance *inst, char *out) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  if (!out) return vasp_fail(&inst->err, VASP_E_ARG, "out is NULL");
  memcpy(out, inst->id, sizeof inst->id);
  return VASP_OK;
}

int vasp_instance_cert(vasp_instance *inst, uint8_t **out, size_t *out_len) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  if (!out || !out_len) return vasp_fail(&inst->err, VASP_E_ARG, "out or out_len is NULL");
  vasp_bytes copy;
  if (!vasp_bytes_dup(&copy, inst->cert_der.p, inst->cert_der.len))
    return vasp_fail(&inst->err, VASP_E_NOMEM, "cannot copy the certificate");
  *out = copy.p;
  *out_len = copy.len;
  return VASP_OK;
}

int vasp_instance_extend(vasp_instance *inst, uint32_t reg, const uint8_t *data, size_t len,
                         const char *description) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  return vasp_regs_extend(&inst->regs, &inst->err, reg, data, len, description);
}

int vasp_instance_read(vasp_instance *inst, uint32_t alg, uint32_t reg, uint8_t *out) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  return vasp_regs_read(&inst->regs, &inst->err, alg, reg, out);
}

int vasp_instance_event_log(vasp_instance *inst, uint8_t **out, size_t *out_len) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  return vasp_regs_log_json(&inst->regs, &inst->err, out, out_len);
}

int vasp_instance_quote(vasp_instance *inst, uint32_t alg, uint32_t reg_mask,
                        const uint8_t *nonce, size_t nonce_len, uint8_t **out,
                        size_t *out_len) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  return vasp_quote_make(&inst->err, inst->key, &inst->regs, alg, reg_mask, nonce, nonce_len,
                         out, out_len);
}
