/* Export of a whole instance, sealed under the ASP storage key with the
 * binding as AAD and the VM's export counter against rollback; the counter
 * bookkeeping every export (also a migration) goes through. Blob layout in
 * docs/quote-format.md. */
#include "_export.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

bool vasp_export_content_write(const vasp_instance *inst, vasp_wbuf *w) {
  vasp_wb_u16(w, CONTENT_VERSION);
  if (!vasp_key_write(inst->key, w)) return false;
  vasp_wb_blob(w, inst->cert_der.p, inst->cert_der.len);
  vasp_wb_put(w, inst->config_digest, VASP_DIGEST_LEN);
  vasp_regs_write(&inst->regs, w);
  return !w->failed;
}

/* Seals the instance under the storage key (a vasp_export_sealer; ctx
 * points to the flags). */
static int seal_blob(vasp_instance *inst, uint64_t counter, void *ctx, vasp_wbuf *blob) {
  vasp_asp *asp = inst->asp;
  uint32_t flags = *(const uint32_t *)ctx;
  vasp_wbuf plain = {0};
  int rc = VASP_OK;
  if (!vasp_export_content_write(inst, &plain)) {
    rc = vasp_fail_ssl(&inst->err, VASP_E_NOMEM, "cannot encode instance %s", inst->id);
  } else {
    vasp_wb_put(blob, EXPORT_MAGIC, 8);
    vasp_wb_u16(blob, EXPORT_VERSION);
    vasp_wb_put(blob, asp->id, VASP_ASP_ID_LEN);
    vasp_wb_put(blob, inst->vm_uuid, VASP_UUID_LEN);
    vasp_wb_put(blob, inst->id, VASP_INST_ID_HEX);
    vasp_wb_u64(blob, counter);
    vasp_wb_u32(blob, flags);
    if (!vasp_wb_reserve(blob, VASP_NONCE_LEN + plain.len + VASP_TAG_LEN)) {
      rc = vasp_fail(&inst->err, VASP_E_NOMEM, "cannot allocate the export blob");
    } else {
      uint8_t *nonce = blob->p + HEADER_LEN, *ct = nonce + VASP_NONCE_LEN;
      if (RAND_bytes(nonce, VASP_NONCE_LEN) != 1 ||
          !vasp_aead_seal(asp->storage_key, nonce, blob->p, HEADER_LEN, NULL, 0, plain.p,
                          plain.len, ct, ct + plain.len))
        rc = vasp_fail_ssl(&inst->err, VASP_E_CRYPTO, "cannot seal instance %s", inst->id);
    }
  }
  vasp_wb_free(&plain);
  if (rc) vasp_wb_free(blob);
  return rc;
}

int vasp_export_record(vasp_asp *asp, vasp_err *err, const char *vm_uuid, uint64_t counter,
                       bool snapshot) {
  vasp_ledger *l = &asp->ledger;
  vasp_vm_record *vm = vasp_ledger_vm(l, vm_uuid);
  bool created = !vm;
  if (created && !(vm = vasp_ledger_add_vm(l, vm_uuid)))
    return vasp_fail(err, VASP_E_ARG, "cannot record VM %s: %u VMs at most", vm_uuid,
                     VASP_MAX_VMS);
  uint64_t old = vm->newest;
  vm->newest = counter;
  int rc = VASP_OK;
  bool written = false;
  if (snapshot && !vasp_vm_add_snapshot(vm, counter))
    rc = vasp_fail(err, VASP_E_ARG, "cannot register a snapshot of VM %s: %u at most", vm_uuid,
                   VASP_MAX_SNAPSHOTS);
  else if ((rc = vasp_state_save(asp, err, &written)) != VASP_OK && snapshot && !written)
    vm->n_snapshots--;
  /* A file already holding the counter keeps it in memory too (used up, the
   * next export goes past it); the blob is dropped by the caller either way. */
  if (rc && !written) {
    vm->newest = old;
    if (created) vasp_ledger_drop_last_vm(l);
  }
  return rc;
}

int vasp_export_run(vasp_instance *inst, bool snapshot, uint64_t after, vasp_export_sealer seal,
                    void *ctx, uint8_t **out, size_t *out_len, uint64_t *counter) {
  const vasp_vm_record *vm = vasp_ledger_vm(&inst->asp->ledger, inst->vm_uuid);
  uint64_t newest = vm ? vm->newest : 0;
  if (after > newest && after - newest > VASP_MAX_COUNTER_SKIP)
    return vasp_fail(&inst->err, VASP_E_ARG,
                     "cannot export VM %s after counter %llu: more than %llu past its newest %llu",
                     inst->vm_uuid, (unsigned long long)after,
                     (unsigned long long)VASP_MAX_COUNTER_SKIP, (unsigned long long)newest);
  uint64_t next = (after > newest ? after : newest) + 1;
  if (next == 0)
    return vasp_fail(&inst->err, VASP_E_ARG, "export counter of VM %s is at its maximum",
                     inst->vm_uuid);
  vasp_wbuf blob = {0};
  int rc = seal(inst, next, ctx, &blob);
  /* The counter is persisted before the blob leaves, so no blob ever
   * carries a counter the ASP might forget. */
  if (rc == VASP_OK) rc = vasp_export_record(inst->asp, &inst->err, inst->vm_uuid, next, snapshot);
  if (rc) {
    vasp_wb_free(&blob);
    return rc;
  }
  *out = vasp_wb_take(&blob, out_len);
  *counter = next;
  return VASP_OK;
}

int vasp_instance_export(vasp_instance *inst, uint32_t flags, uint8_t **out, size_t *out_len,
                         uint64_t *counter) {
  if (!inst) return vasp_fail(NULL, VASP_E_ARG, "inst is NULL");
  vasp_clear(&inst->err);
  if (!out || !out_len || !counter)
    return vasp_fail(&inst->err, VASP_E_ARG, "out, out_len or counter is NULL");
  if (flags & ~VASP_SNAPSHOT) return vasp_fail(&inst->err, VASP_E_ARG, "unknown flags 0x%x", flags);
  return vasp_export_run(inst, flags & VASP_SNAPSHOT, 0, seal_blob, &flags, out, out_len,
                         counter);
}
