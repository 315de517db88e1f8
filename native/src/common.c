#include "_internal.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local vasp_err thread_err;

/* OpenSSL frees its global state from an atexit() handler by default. The bindings run long
 * calls (MACs, digests) on worker threads that a process may still be running when it exits:
 * the handler then frees what such a call is using, and the exit ends in a segfault or a
 * "double free" abort (5 exits in 30 with a MAC batch running, measured). Initialised first,
 * when the library is loaded, without that handler: the state goes with the process. */
__attribute__((constructor)) static void init_openssl(void) {
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

uint32_t vasp_abi_version(void) { return VASP_ABI_VERSION; }

const char *vasp_errmsg(const void *handle) {
  const vasp_err *err = handle ? (const vasp_err *)handle : &thread_err;
  return err->msg;
}

void vasp_free(void *p) { free(p); }

void vasp_clear(vasp_err *err) { (err ? err : &thread_err)->msg[0] = '\0'; }

static void vfail(vasp_err *err, const char *fmt, va_list ap) {
  vasp_err *slot = err ? err : &thread_err;
  vsnprintf(slot->msg, sizeof slot->msg, fmt, ap);
}

int vasp_fail(vasp_err *err, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(err, fmt, ap);
  va_end(ap);
  return rc;
}

int vasp_fail_ssl(vasp_err *err, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(err, fmt, ap);
  va_end(ap);
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code != 0) {
    vasp_err *slot = err ? err : &thread_err;
    size_t used = strlen(slot->msg);
    char reason[256];
    ERR_error_string_n(code, reason, sizeof reason);
    snprintf(slot->msg + used, sizeof slot->msg - used, ": %s", reason);
  }
  return rc;
}

void vasp_wipe(void *p, size_t len) {
  if (p) OPENSSL_cleanse(p, len);
}

void vasp_hex(const uint8_t *in, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * len] = '\0';
}
