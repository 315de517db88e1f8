/* Fault injection for the C tests. The seam exists only in builds with
 * -DVASP_TESTING (the test binaries); the shipped library has none. */
#ifndef VASP_FAULT_H
#define VASP_FAULT_H

#include <stdbool.h>

#ifdef VASP_TESTING
/* When set, called instead of fsync(2) by the state-directory writers;
 * is_dir tells the directory sync after a rename from a file's sync. Return
 * -1 with errno set to inject a failure. */
extern int (*vasp_test_fsync)(int fd, bool is_dir);
#endif

#endif
