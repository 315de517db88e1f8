#include "_test.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

static test_case *head, **tail = &head;
static bool failed;
static char tmpdir[256];

void test_register(test_case *tc) {
  *tail = tc;
  tail = &tc->next;
}

bool test_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "    %s:%d: %s\n", file, line, what);
  failed = true;
  return false;
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

const char *test_tmpdir(void) {
  if (tmpdir[0]) nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vasp-ctest-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(2);
  }
  return tmpdir;
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  int passed = 0, failures = 0;
  for (test_case *tc = head; tc; tc = tc->next) {
    if (only && !strstr(tc->name, only)) continue;
    failed = false;
    tc->fn();
    if (tmpdir[0]) {
      nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
      tmpdir[0] = '\0';
    }
    printf("%s %s\n", failed ? "FAIL" : "ok  ", tc->name);
    failed ? failures++ : passed++;
  }
  printf("C tests: %d passed, %d failed\n", passed, failures);
  return failures ? 1 : 0;
}
