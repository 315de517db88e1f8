/* Named monotonic counters and snapshot registration: ledger changes that
 * are persisted before the call returns, and undone in memory when the
 * write failed before the new file took the old one's place. */
#include "_asp.h"

#include <stdio.h>

/* The argument checks both counter calls start with. */
static int counter_args(vasp_asp *asp, const char *name, const uint64_t *value) {
  if (!vasp_counter_name_ok(name))
    return vasp_fail(&asp->err, VASP_E_ARG,
                     "counter name \"%.64s\" is not 1..64 characters of [A-Za-z0-9._:-]",
                     name ? name : "(NULL)");
  if (!value) return vasp_fail(&asp->err, VASP_E_ARG, "value is NULL");
  return VASP_OK;
}

int vasp_asp_counter_increment(vasp_asp *asp, const char *name, uint64_t *value) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  int rc = counter_args(asp, name, value);
  if (rc) return rc;
  vasp_counter *c = vasp_ledger_counter(&asp->ledger, name);
  bool created = !c;
  if (created && !(c = vasp_ledger_add_counter(&asp->ledger, name)))
    return vasp_fail(&asp->err, VASP_E_ARG, "cannot add counter \"%s\": %u counters at most",
                     name, VASP_MAX_COUNTERS);
  if (c->value == UINT64_MAX)
    return vasp_fail(&asp->err, VASP_E_ARG, "counter \"%s\" is at its maximum", name);
  c->value++;
  bool written = false;
  rc = vasp_state_save(asp, &asp->err, &written);
  /* Once the file holds the new value, memory keeps it too: the value is
   * used up (never returned), and the next increment goes past it. */
  if (rc && !written) {
    if (created) asp->ledger.n_counters--;
    else c->value--;
  }
  if (rc) return rc;
  *value = c->value;
  return VASP_OK;
}

int vasp_asp_counter_read(vasp_asp *asp, const char *name, uint64_t *value) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  int rc = counter_args(asp, name, value);
  if (rc) return rc;
  const vasp_counter *c = vasp_ledger_counter(&asp->ledger, name);
  if (!c) return vasp_fail(&asp->err, VASP_E_NOT_FOUND, "counter \"%s\" does not exist", name);
  *value = c->value;
  return VASP_OK;
}

int vasp_asp_vm_counter(vasp_asp *asp, const char *vm_uuid, uint64_t *newest) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  char uuid[VASP_UUID_LEN + 1];
  int uuid_rc = vasp_vm_uuid_arg(&asp->err, vm_uuid, uuid);
  if (uuid_rc) return uuid_rc;
  if (!newest) return vasp_fail(&asp->err, VASP_E_ARG, "newest is NULL");
  const vasp_vm_record *vm = vasp_ledger_vm(&asp->ledger, uuid);
  *newest = vm ? vm->newest : 0;
  return VASP_OK;
}

int vasp_asp_snapshot_forget(vasp_asp *asp, const char *vm_uuid, uint64_t counter) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  char uuid[VASP_UUID_LEN + 1];
  int uuid_rc = vasp_vm_uuid_arg(&asp->err, vm_uuid, uuid);
  if (uuid_rc) return uuid_rc;
  vasp_vm_record *vm = vasp_ledger_vm(&asp->ledger, uuid);
  ptrdiff_t i = vm ? vasp_vm_snapshot_index(vm, counter) : -1;
  if (i < 0)
    return vasp_fail(&asp->err, VASP_E_NOT_FOUND,
                     "VM %s has no registered snapshot with counter %llu", uuid,
                     (unsigned long long)counter);
  /* Swap with the last and shrink, so undo is a swap back (no allocation). */
  size_t last = vm->n_snapshots - 1;
  vm->snapshots[i] = vm->snapshots[last];
  vm->snapshots[last] = counter;
  vm->n_snapshots--;
  bool written = false;
  int rc = vasp_state_save(asp, &asp->err, &written);
  if (rc && !written) {
    vm->n_snapshots++;
    vm->snapshots[last] = vm->snapshots[i];
    vm->snapshots[i] = counter;
  }
  return rc;
}
