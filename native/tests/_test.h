/* A small test harness: TEST(name) { ... } registers a test at load time;
 * CHECK(cond), CHECK_RC(call, rc, handle) and CHECK_MSG(handle, text) fail the
 * running test with the line. */
#ifndef VASP_TEST_H
#define VASP_TEST_H

#include "vasp.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct test_case {
  const char *name;
  void (*fn)(void);
  struct test_case *next;
} test_case;

void test_register(test_case *tc);
/* Marks the running test failed; returns false so CHECK can bail out. */
bool test_fail(const char *file, int line, const char *what);
/* A fresh empty directory for the running test (removed after the run). */
const char *test_tmpdir(void);

#define TEST(name)                                                      \
  static void name(void);                                               \
  __attribute__((constructor)) static void register_##name(void) {      \
    static test_case tc = {#name, name, NULL};                          \
    test_register(&tc);                                                 \
  }                                                                     \
  static void name(void)

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      test_fail(__FILE__, __LINE__, #cond);                             \
      return;                                                           \
    }                                                                   \
  } while (0)

/* Checks a return code; on mismatch reports both codes and the message of
 * `handle` (or the thread's, for NULL). */
#define CHECK_RC(call, want, handle)                                    \
  do {                                                                  \
    int got_ = (call);                                                  \
    if (got_ != (want)) {                                               \
      char what_[768];                                                  \
      snprintf(what_, sizeof what_, "%s = %d, want %d (%s)", #call,     \
               got_, (int)(want), vasp_errmsg(handle));                 \
      test_fail(__FILE__, __LINE__, what_);                             \
      return;                                                           \
    }                                                                   \
  } while (0)

/* Checks that the last error message of `handle` (or the thread's, for NULL)
 * contains `text`; on failure reports the message it got. */
#define CHECK_MSG(handle, text)                                         \
  do {                                                                  \
    const char *msg_ = vasp_errmsg(handle);                             \
    if (!msg_ || !strstr(msg_, (text))) {                               \
      char what_[768];                                                  \
      snprintf(what_, sizeof what_, "message \"%s\" lacks \"%s\"",      \
               msg_ ? msg_ : "(none)", (text));                         \
      test_fail(__FILE__, __LINE__, what_);                             \
      return;                                                           \
    }                                                                   \
  } while (0)

#endif
