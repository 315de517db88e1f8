/* Private to libvasp: the error slot every handle carries, and helpers shared
 * by the translation units. */
#ifndef VASP_INTERNAL_H
#define VASP_INTERNAL_H

#include "vasp.h"

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#define VASP_ERRMSG_LEN 512

/* First member of every handle struct, so vasp_errmsg(handle) can find it. */
typedef struct vasp_err {
  char msg[VASP_ERRMSG_LEN];
} vasp_err;

/* Records a formatted message on `err` (or on the calling thread's slot when
 * err is NULL) and returns rc, so callers write `return vasp_fail(...)`. */
int vasp_fail(vasp_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As vasp_fail, appending the oldest queued OpenSSL error (and clearing the
 * queue). */
int vasp_fail_ssl(vasp_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the message on err (or the thread's slot). */
void vasp_clear(vasp_err *err);

/* OPENSSL_cleanse, for key material. */
void vasp_wipe(void *p, size_t len);

/* The fetched EVP_MD for a vasp_alg (NULL for an unknown one); owned by the
 * library. Use it for streaming digests (EVP_DigestInit_ex). */
typedef struct evp_md_st EVP_MD;
const EVP_MD *vasp_md(uint32_t alg);

/* EVP digest of one buffer; false on OpenSSL failure. */
bool vasp_digest(uint32_t alg, const uint8_t *data, size_t len, uint8_t *out);

/* Lowercase hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void vasp_hex(const uint8_t *in, size_t len, char *out);

/* For the QMP gate's lane (lane.c): a handle for a connected socket fd (the
 * handle owns it), a handle's descriptor, and freeing a handle without
 * closing its descriptor (whoever took it over closes it). */
int vasp_sock_wrap(int fd, vasp_sock **out);
/* recvmsg(2) of fd with the SCM_RIGHTS descriptors that came (close-on-exec; up
 * to fd_cap and VASP_SOCK_MAX_FDS, the rest closed) and sendmsg(2) with nfds
 * descriptors (at most VASP_SOCK_MAX_FDS) attached to the first byte, never
 * raising SIGPIPE; EINTR retried. flags: MSG_DONTWAIT or 0. */
ssize_t vasp_recv_fds(int fd, uint8_t *buf, size_t cap, int flags, int32_t *fds,
                      uint32_t fd_cap, uint32_t *nfds);
ssize_t vasp_send_fds(int fd, const uint8_t *buf, size_t len, const int32_t *fds,
                      uint32_t nfds, int flags);
int vasp_sock_fd(const vasp_sock *s);
void vasp_sock_forget(vasp_sock *s);

#endif
