/* Files of the ASP state directory: creation, locking, bounded reads and
 * atomic replacement. */
#include "_asp.h"
#include "_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef VASP_TESTING
int (*vasp_test_fsync)(int fd, bool is_dir);
static int sync_fd(int fd, bool is_dir) {
  return vasp_test_fsync ? vasp_test_fsync(fd, is_dir) : fsync(fd);
}
#else
static int sync_fd(int fd, bool is_dir) {
  (void)is_dir;
  return fsync(fd);
}
#endif

char *vasp_path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

int vasp_mkdirs(vasp_err *err, const char *dir) {
  char *path = strdup(dir);
  if (!path) return vasp_fail(err, VASP_E_NOMEM, "cannot copy the path %s", dir);
  int rc = VASP_OK;
  /* Each missing component, parents first; existing ones keep their mode. */
  for (char *p = path + 1;; p++) {
    bool end = *p == '\0';
    if (*p != '/' && !end) continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      rc = vasp_fail(err, VASP_E_IO, "cannot create directory %s: %s", path, strerror(errno));
      break;
    }
    if (end) break;
    *p = '/';
  }
  struct stat st;
  if (rc == VASP_OK && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    rc = vasp_fail(err, VASP_E_IO, "state directory %s is not a directory", dir);
  free(path);
  return rc;
}

int vasp_lock_dir(vasp_err *err, const char *dir, int *fd_out) {
  char *path = vasp_path_join(dir, "asp.lock");
  if (!path) return vasp_fail(err, VASP_E_NOMEM, "cannot build the lock path");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  int rc = VASP_OK;
  if (fd < 0) {
    rc = vasp_fail(err, VASP_E_IO, "cannot open lock file %s: %s", path, strerror(errno));
  } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK
             ? vasp_fail(err, VASP_E_IO, "state directory %s is in use by another ASP handle",
                         dir)
             : vasp_fail(err, VASP_E_IO, "cannot lock %s: %s", path, strerror(errno));
    close(fd);
  } else {
    *fd_out = fd;
  }
  free(path);
  return rc;
}

int vasp_read_fd(vasp_err *err, int fd, const char *path, size_t max, vasp_bytes *out) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return vasp_fail(err, VASP_E_IO, "%s is not a regular file", path);
  if ((uint64_t)st.st_size > max)
    return vasp_fail(err, VASP_E_STATE, "%s is %lld bytes, more than the %zu it may have", path,
                     (long long)st.st_size, max);
  /* Read to EOF, one byte past the size seen, so a file that grows is noticed. */
  size_t want = (size_t)st.st_size + 1, len = 0;
  uint8_t *buf = malloc(want);
  if (!buf) return vasp_fail(err, VASP_E_NOMEM, "cannot allocate %zu bytes for %s", want, path);
  int rc = VASP_OK;
  for (;;) {
    ssize_t n = read(fd, buf + len, want - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = vasp_fail(err, VASP_E_IO, "cannot read %s: %s", path, strerror(errno));
      break;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == want) {
      rc = vasp_fail(err, VASP_E_IO, "%s changed while it was read", path);
      break;
    }
  }
  if (rc) {
    vasp_wipe(buf, len);
    free(buf);
    return rc;
  }
  out->p = buf;
  out->len = len;
  return VASP_OK;
}

int vasp_read_file(vasp_err *err, const char *path, size_t max, vasp_bytes *out,
                   bool *missing) {
  *missing = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    return vasp_fail(err, VASP_E_IO, "cannot open %s: %s", path, strerror(errno));
  }
  int rc = vasp_read_fd(err, fd, path, max, out);
  close(fd);
  return rc;
}

int vasp_sync_parent(vasp_err *err, const char *path) {
  char *copy = strdup(path);
  if (!copy) return vasp_fail(err, VASP_E_NOMEM, "cannot copy the path %s", path);
  const char *dir = dirname(copy);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = VASP_OK;
  if (fd < 0 || sync_fd(fd, true) != 0)
    rc = vasp_fail(err, VASP_E_IO, "cannot sync directory %s: %s", dir, strerror(errno));
  if (fd >= 0) close(fd);
  free(copy);
  return rc;
}

static bool write_all(int fd, const uint8_t *data, size_t len) {
  while (len) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

int vasp_write_atomic(vasp_err *err, const char *path, const uint8_t *data, size_t len,
                      unsigned mode, bool *replaced) {
  if (replaced) *replaced = false;
  size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
  char *tmp = malloc(n);
  if (!tmp) return vasp_fail(err, VASP_E_NOMEM, "cannot build a temp path for %s", path);
  snprintf(tmp, n, "%s.tmp-XXXXXX", path);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    int rc = vasp_fail(err, VASP_E_IO, "cannot create a temp file beside %s: %s", path,
                       strerror(errno));
    free(tmp);
    return rc;
  }
  bool ok = fchmod(fd, (mode_t)mode) == 0 && write_all(fd, data, len) && sync_fd(fd, false) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) ok = false, saved = errno;
  if (ok && rename(tmp, path) != 0) {
    saved = errno;
    ok = false;
  }
  int rc = VASP_OK;
  if (!ok) {
    rc = vasp_fail(err, VASP_E_IO, "cannot write %s: %s", path, strerror(saved));
    unlink(tmp);
  } else {
    /* The rename is done: path holds the new content whether or not the
     * directory sync below succeeds, so the caller must not undo its change. */
    if (replaced) *replaced = true;
    rc = vasp_sync_parent(err, path);
  }
  free(tmp);
  return rc;
}

int vasp_write_new_file(vasp_err *err, const char *path, const uint8_t *data, size_t len,
                        unsigned mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
  if (fd < 0)
    return vasp_fail(err, VASP_E_IO, "cannot create %s: %s", path, strerror(errno));
  bool ok = write_all(fd, data, len) && sync_fd(fd, false) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) ok = false, saved = errno;
  if (!ok) {
    unlink(path);
    return vasp_fail(err, VASP_E_IO, "cannot write %s: %s", path, strerror(saved));
  }
  return vasp_sync_parent(err, path);
}
