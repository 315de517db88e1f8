/* The ASP handle: open, close, certificates; a counter read beside it. */
#include "_asp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vasp_asp_close(vasp_asp *asp) {
  if (!asp) return;
  EVP_PKEY_free(asp->ek);
  EVP_PKEY_free(asp->ak);
  X509_free(asp->ak_cert);
  EVP_PKEY_free(asp->tk);
  vasp_bytes_free(&asp->tk_der);
  vasp_bytes_free(&asp->ca_der);
  vasp_bytes_free(&asp->ek_der);
  vasp_bytes_free(&asp->ak_der);
  vasp_regs_free(&asp->regs);
  vasp_ledger_free(&asp->ledger);
  free(asp->dir);
  free(asp->state_path);
  free(asp->secret_path);
  /* Closing drops the lock, so the directory is free for the next open. */
  if (asp->lock_fd >= 0) close(asp->lock_fd);
  vasp_wipe(asp, sizeof *asp);
  free(asp);
}

/* The directory, state and secret paths of an ASP handle. */
static int paths(vasp_asp *asp, const vasp_asp_opts *opts) {
  asp->dir = strdup(opts->state_dir);
  asp->state_path = asp->dir ? vasp_path_join(asp->dir, "asp.state") : NULL;
  asp->secret_path = opts->secret_path ? strdup(opts->secret_path)
                     : asp->dir            ? vasp_path_join(asp->dir, "host.secret")
                                           : NULL;
  return !asp->dir || !asp->state_path || !asp->secret_path
             ? vasp_fail(&asp->err, VASP_E_NOMEM, "cannot allocate the ASP paths")
             : VASP_OK;
}

int vasp_asp_open(const vasp_asp_opts *opts, vasp_asp **out) {
  vasp_clear(NULL);
  if (!out) return vasp_fail(NULL, VASP_E_ARG, "out is NULL");
  *out = NULL;
  if (!opts || !opts->state_dir || !opts->state_dir[0])
    return vasp_fail(NULL, VASP_E_ARG, "state_dir is missing");
  if (opts->secret_path && !opts->secret_path[0])
    return vasp_fail(NULL, VASP_E_ARG, "secret_path is empty");
  vasp_asp *asp = calloc(1, sizeof *asp);
  if (!asp) return vasp_fail(NULL, VASP_E_NOMEM, "cannot allocate the ASP");
  asp->lock_fd = -1;
  int rc = paths(asp, opts);
  if (rc == VASP_OK) rc = vasp_mkdirs(&asp->err, asp->dir);
  if (rc == VASP_OK) rc = vasp_lock_dir(&asp->err, asp->dir, &asp->lock_fd);
  if (rc == VASP_OK) rc = vasp_state_open(asp);
  if (rc == VASP_OK) rc = vasp_asp_transport_key(asp);
  if (rc != VASP_OK) {
    vasp_fail(NULL, rc, "%s", asp->err.msg);
    vasp_asp_close(asp);
    return rc;
  }
  vasp_clear(&asp->err);
  *out = asp;
  return VASP_OK;
}

int vasp_asp_counter_peek(const vasp_asp_opts *opts, const char *name, uint64_t *value) {
  vasp_clear(NULL);
  if (!opts || !opts->state_dir || !opts->state_dir[0])
    return vasp_fail(NULL, VASP_E_ARG, "state_dir is missing");
  if (opts->secret_path && !opts->secret_path[0])
    return vasp_fail(NULL, VASP_E_ARG, "secret_path is empty");
  if (!vasp_counter_name_ok(name))
    return vasp_fail(NULL, VASP_E_ARG,
                     "counter name \"%.64s\" is not 1..64 characters of [A-Za-z0-9._:-]",
                     name ? name : "(NULL)");
  if (!value) return vasp_fail(NULL, VASP_E_ARG, "value is NULL");
  vasp_asp *asp = calloc(1, sizeof *asp);
  if (!asp) return vasp_fail(NULL, VASP_E_NOMEM, "cannot allocate the ASP");
  asp->lock_fd = -1;
  int rc = paths(asp, opts);
  if (rc == VASP_OK) rc = vasp_state_peek(asp);
  const vasp_counter *c = rc == VASP_OK ? vasp_ledger_counter(&asp->ledger, name) : NULL;
  if (rc == VASP_OK && !c)
    rc = vasp_fail(&asp->err, VASP_E_NOT_FOUND, "counter \"%s\" does not exist in %s", name,
                   asp->state_path);
  if (rc == VASP_OK) *value = c->value;
  else vasp_fail(NULL, rc, "%s", asp->err.msg);
  vasp_asp_close(asp);
  return rc;
}

int vasp_asp_cert(vasp_asp *asp, uint32_t kind, uint8_t **out, size_t *out_len) {
  if (!asp) return vasp_fail(NULL, VASP_E_ARG, "asp is NULL");
  vasp_clear(&asp->err);
  const vasp_bytes *der = kind == VASP_CERT_CA   ? &asp->ca_der
                          : kind == VASP_CERT_EK ? &asp->ek_der
                          : kind == VASP_CERT_AK ? &asp->ak_der
                          : kind == VASP_CERT_TRANSPORT ? &asp->tk_der
                                                        : NULL;
  if (!der) return vasp_fail(&asp->err, VASP_E_ARG, "unknown certificate kind %u", kind);
  if (!out || !out_len) return vasp_fail(&asp->err, VASP_E_ARG, "out or out_len is NULL");
  vasp_bytes copy;
  if (!vasp_bytes_dup(&copy, der->p, der->len))
    return vasp_fail(&asp->err, VASP_E_NOMEM, "cannot copy the certificate");
  *out = copy.p;
  *out_len = copy.len;
  return VASP_OK;
}
