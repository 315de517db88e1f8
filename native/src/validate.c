/* Syntax of the names and identifiers callers pass in. */
#include "_asp.h"

#include <ctype.h>
#include <string.h>

bool vasp_uuid_normalize(const char *in, char out[VASP_UUID_LEN + 1]) {
  if (!in || strnlen(in, VASP_UUID_LEN + 1) != VASP_UUID_LEN) return false;
  for (size_t i = 0; i < VASP_UUID_LEN; i++) {
    unsigned char c = (unsigned char)in[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !isxdigit(c)) return false;
    out[i] = (char)tolower(c);
  }
  out[VASP_UUID_LEN] = '\0';
  return true;
}

int vasp_vm_uuid_arg(vasp_err *err, const char *in, char out[VASP_UUID_LEN + 1]) {
  if (vasp_uuid_normalize(in, out)) return VASP_OK;
  return vasp_fail(err, VASP_E_ARG, "VM UUID \"%.40s\" is not a canonical UUID",
                   in ? in : "(NULL)");
}

bool vasp_counter_name_ok(const char *name) {
  size_t n = name ? strnlen(name, VASP_COUNTER_NAME_MAX + 1) : 0;
  if (n == 0 || n > VASP_COUNTER_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!isalnum(c) && !strchr("._:-", c)) return false;
  }
  return true;
}

bool vasp_inst_id_ok(const char *s) {
  for (size_t i = 0; i < VASP_INST_ID_HEX; i++)
    if (!strchr("0123456789abcdef", s[i]) || !s[i]) return false;
  return s[VASP_INST_ID_HEX] == '\0';
}
