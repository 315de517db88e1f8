/* The ledger: named counters, per-VM export counters and registered
 * snapshots, destroyed instance IDs; in memory and serialised. */
#include "_asp.h"

#include <stdlib.h>
#include <string.h>

/* Grows *arr to hold n + 1 elements of size `size`. */
static bool grow(void **arr, size_t n, size_t size) {
  void *p = realloc(*arr, (n + 1) * size);
  if (!p) return false;
  *arr = p;
  return true;
}

vasp_counter *vasp_ledger_counter(vasp_ledger *l, const char *name) {
  for (size_t i = 0; i < l->n_counters; i++)
    if (strcmp(l->counters[i].name, name) == 0) return &l->counters[i];
  return NULL;
}

vasp_counter *vasp_ledger_add_counter(vasp_ledger *l, const char *name) {
  if (l->n_counters >= VASP_MAX_COUNTERS ||
      !grow((void **)&l->counters, l->n_counters, sizeof *l->counters))
    return NULL;
  vasp_counter *c = &l->counters[l->n_counters++];
  memset(c, 0, sizeof *c);
  strncpy(c->name, name, VASP_COUNTER_NAME_MAX);
  return c;
}

vasp_vm_record *vasp_ledger_vm(vasp_ledger *l, const char *uuid) {
  for (size_t i = 0; i < l->n_vms; i++)
    if (strcmp(l->vms[i].uuid, uuid) == 0) return &l->vms[i];
  return NULL;
}

vasp_vm_record *vasp_ledger_add_vm(vasp_ledger *l, const char *uuid) {
  if (l->n_vms >= VASP_MAX_VMS || !grow((void **)&l->vms, l->n_vms, sizeof *l->vms))
    return NULL;
  vasp_vm_record *vm = &l->vms[l->n_vms++];
  memset(vm, 0, sizeof *vm);
  memcpy(vm->uuid, uuid, VASP_UUID_LEN);
  return vm;
}

void vasp_ledger_drop_last_vm(vasp_ledger *l) {
  free(l->vms[--l->n_vms].snapshots);
}

ptrdiff_t vasp_vm_snapshot_index(const vasp_vm_record *vm, uint64_t counter) {
  for (size_t i = 0; i < vm->n_snapshots; i++)
    if (vm->snapshots[i] == counter) return (ptrdiff_t)i;
  return -1;
}

bool vasp_vm_add_snapshot(vasp_vm_record *vm, uint64_t counter) {
  if (vm->n_snapshots >= VASP_MAX_SNAPSHOTS ||
      !grow((void **)&vm->snapshots, vm->n_snapshots, sizeof *vm->snapshots))
    return false;
  vm->snapshots[vm->n_snapshots++] = counter;
  return true;
}

bool vasp_ledger_destroyed(const vasp_ledger *l, const char *inst_id) {
  for (size_t i = 0; i < l->n_destroyed; i++)
    if (memcmp(l->destroyed[i], inst_id, VASP_INST_ID_HEX) == 0) return true;
  return false;
}

bool vasp_ledger_add_destroyed(vasp_ledger *l, const char *inst_id) {
  if (l->n_destroyed >= VASP_MAX_DESTROYED ||
      !grow((void **)&l->destroyed, l->n_destroyed, sizeof *l->destroyed))
    return false;
  memcpy(l->destroyed[l->n_destroyed], inst_id, VASP_INST_ID_HEX);
  l->destroyed[l->n_destroyed++][VASP_INST_ID_HEX] = '\0';
  return true;
}

void vasp_ledger_write(const vasp_ledger *l, vasp_wbuf *w) {
  vasp_wb_u32(w, (uint32_t)l->n_counters);
  for (size_t i = 0; i < l->n_counters; i++) {
    size_t n = strlen(l->counters[i].name);
    vasp_wb_u8(w, (uint8_t)n);
    vasp_wb_put(w, l->counters[i].name, n);
    vasp_wb_u64(w, l->counters[i].value);
  }
  vasp_wb_u32(w, (uint32_t)l->n_vms);
  for (size_t i = 0; i < l->n_vms; i++) {
    const vasp_vm_record *vm = &l->vms[i];
    vasp_wb_put(w, vm->uuid, VASP_UUID_LEN);
    vasp_wb_u64(w, vm->newest);
    vasp_wb_u32(w, (uint32_t)vm->n_snapshots);
    for (size_t j = 0; j < vm->n_snapshots; j++) vasp_wb_u64(w, vm->snapshots[j]);
  }
  vasp_wb_u32(w, (uint32_t)l->n_destroyed);
  for (size_t i = 0; i < l->n_destroyed; i++) vasp_wb_put(w, l->destroyed[i], VASP_INST_ID_HEX);
}

static bool parse_counters(vasp_ledger *l, vasp_rbuf *r) {
  size_t n;
  if (!vasp_rb_count(r, &n, VASP_MAX_COUNTERS, 1 + 1 + 8)) return false;
  for (size_t i = 0; i < n; i++) {
    uint8_t len;
    char name[VASP_COUNTER_NAME_MAX + 1] = {0};
    uint64_t value;
    if (!vasp_rb_u8(r, &len)) return false;
    if (len > VASP_COUNTER_NAME_MAX) return vasp_rb_bad(r, "counter name too long");
    if (!vasp_rb_get(r, name, len) || !vasp_rb_u64(r, &value)) return false;
    if (!vasp_counter_name_ok(name) || strlen(name) != len || vasp_ledger_counter(l, name))
      return vasp_rb_bad(r, "counter name malformed or repeated");
    vasp_counter *c = vasp_ledger_add_counter(l, name);
    if (!c) return vasp_rb_bad(r, "out of memory for counters");
    c->value = value;
  }
  return true;
}

static bool parse_vms(vasp_ledger *l, vasp_rbuf *r) {
  size_t n;
  if (!vasp_rb_count(r, &n, VASP_MAX_VMS, VASP_UUID_LEN + 8 + 4)) return false;
  for (size_t i = 0; i < n; i++) {
    char raw[VASP_UUID_LEN + 1] = {0}, uuid[VASP_UUID_LEN + 1];
    uint64_t newest;
    size_t n_snap;
    if (!vasp_rb_get(r, raw, VASP_UUID_LEN) || !vasp_rb_u64(r, &newest) ||
        !vasp_rb_count(r, &n_snap, VASP_MAX_SNAPSHOTS, 8))
      return false;
    /* No search for repeats: 65536 records would take a quadratic scan, and
     * the file is authenticated, written only by vasp_ledger_write. */
    if (!vasp_uuid_normalize(raw, uuid) || strcmp(raw, uuid) != 0)
      return vasp_rb_bad(r, "VM UUID malformed");
    vasp_vm_record *vm = vasp_ledger_add_vm(l, uuid);
    if (!vm) return vasp_rb_bad(r, "out of memory for VM records");
    vm->newest = newest;
    for (size_t j = 0; j < n_snap; j++) {
      uint64_t counter;
      if (!vasp_rb_u64(r, &counter)) return false;
      if (!vasp_vm_add_snapshot(vm, counter)) return vasp_rb_bad(r, "out of memory for snapshots");
    }
  }
  return true;
}

static bool parse_destroyed(vasp_ledger *l, vasp_rbuf *r) {
  size_t n;
  if (!vasp_rb_count(r, &n, VASP_MAX_DESTROYED, VASP_INST_ID_HEX)) return false;
  if (n && !(l->destroyed = malloc(n * sizeof *l->destroyed)))
    return vasp_rb_bad(r, "out of memory for destroyed instances");
  for (size_t i = 0; i < n; i++) {
    char *id = l->destroyed[i];
    if (!vasp_rb_get(r, id, VASP_INST_ID_HEX)) return false;
    id[VASP_INST_ID_HEX] = '\0';
    if (!vasp_inst_id_ok(id)) return vasp_rb_bad(r, "destroyed instance ID malformed");
    l->n_destroyed = i + 1;
  }
  return true;
}

bool vasp_ledger_parse(vasp_ledger *l, vasp_rbuf *r) {
  return parse_counters(l, r) && parse_vms(l, r) && parse_destroyed(l, r);
}

void vasp_ledger_free(vasp_ledger *l) {
  for (size_t i = 0; i < l->n_vms; i++) free(l->vms[i].snapshots);
  free(l->vms);
  free(l->counters);
  free(l->destroyed);
  memset(l, 0, sizeof *l);
}
