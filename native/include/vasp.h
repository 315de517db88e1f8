/*
 * libvasp: the software Active Security Processor (ASP), per-VM virtual ASP
 * (vASP) instances, hashing, and guest physical memory introspection.
 *
 * Conventions (see shared STYLE.md, "FFI ownership"):
 * - Every function returns a vasp_rc; 0 is success. Out-parameters are
 *   written only on success, except that constructors set *out to NULL on
 *   failure.
 * - The message for the last failure is vasp_errmsg(handle) for calls that
 *   take a handle, and vasp_errmsg(NULL) for calls that take none (the
 *   constructors and the free hashing functions). The string is owned by the
 *   library and valid until the next call on the same handle (or, for NULL,
 *   the next handle-less call on the same thread).
 * - Inputs are borrowed for the duration of the call. A buffer the library
 *   allocates and returns through (uint8_t **out, size_t *out_len) is owned
 *   by the caller and released with vasp_free(), never with libc free().
 * - Every vasp_x_close(NULL) is a no-op. Handles are not thread-safe: use one
 *   handle from one thread at a time.
 * - Loading the library initialises OpenSSL without its exit-time teardown
 *   (OPENSSL_INIT_NO_ATEXIT): a process may exit while a call still runs on
 *   another thread, and that teardown would free what the call is using. Load
 *   it before anything else in the process initialises OpenSSL.
 */
#ifndef VASP_H
#define VASP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the public API; everything else in the library is hidden. */
#define VASP_API __attribute__((visibility("default")))

/* Bumped on every incompatible change; the bindings refuse another value. */
#define VASP_ABI_VERSION 6u

typedef enum vasp_rc {
  VASP_OK = 0,
  VASP_E_ARG = 1,        /* an argument is invalid (NULL, out of range, malformed) */
  VASP_E_NOMEM = 2,      /* allocation failed */
  VASP_E_IO = 3,         /* a file could not be read, written or created */
  VASP_E_CRYPTO = 4,     /* an OpenSSL operation failed */
  VASP_E_STATE = 5,      /* persisted ASP state is corrupt, truncated, foreign or of another version */
  VASP_E_AUTH = 6,       /* a sealed blob failed authentication (tampered, or sealed by or to another ASP) */
  VASP_E_ROLLBACK = 7,   /* a blob is older than the newest exported one and is not a registered snapshot */
  VASP_E_BINDING = 8,    /* a blob or request is bound to another VM or instance */
  VASP_E_NOT_FOUND = 9,  /* a named counter, snapshot or instance does not exist */
  VASP_E_RANGE = 10,     /* a guest address or length lies outside guest memory */
  VASP_E_WALK = 11,      /* a guest page walk failed: not present, malformed, or over its step bound */
  VASP_E_DESTROYED = 12, /* the instance was destroyed */
  VASP_E_CLOSED = 13     /* a socket was shut down (vasp_sock_shutdown) while a call waited on it */
} vasp_rc;

/* Hash algorithms; also the register banks. */
typedef enum vasp_alg {
  VASP_ALG_SHA256 = 0,
  VASP_ALG_SM3 = 1
} vasp_alg;

#define VASP_DIGEST_LEN 32u
#define VASP_NUM_REGS 24u

/* Returns VASP_ABI_VERSION as compiled into the library. */
VASP_API uint32_t vasp_abi_version(void);

/* The message for the last failure on `handle` (any vasp_* handle, or NULL
 * for handle-less calls). Owned by the library; never NULL. */
VASP_API const char *vasp_errmsg(const void *handle);

/* Releases a buffer the library returned through an out-parameter. NULL is a
 * no-op. */
VASP_API void vasp_free(void *p);

/* ------------------------------------------------------------------------ */
/* Hashing                                                                   */

/* Writes the digest of data[0..len) to out (VASP_DIGEST_LEN bytes, caller's). */
VASP_API int vasp_hash(uint32_t alg, const uint8_t *data, size_t len, uint8_t *out);

/* One region of caller memory, as laid out in the regions array of
 * vasp_hash_batch: 16 bytes, little-endian, no padding. */
typedef struct vasp_mem_region {
  uint64_t ptr; /* address of the first byte */
  uint64_t len; /* length in bytes */
} vasp_mem_region;

/* Hashes n regions in one call; writes n * VASP_DIGEST_LEN bytes to out
 * (caller's), one digest per region in order. */
VASP_API int vasp_hash_batch(uint32_t alg, const vasp_mem_region *regions, size_t n,
                    uint8_t *out);

/* ------------------------------------------------------------------------ */
/* The software ASP                                                          */

typedef struct vasp_asp vasp_asp;

typedef struct vasp_asp_opts {
  /* Directory holding the ASP state (created 0700 if missing). Required. */
  const char *state_dir;
  /* Host secret the state key is derived from. NULL means
   * "<state_dir>/host.secret". Created with 32 random bytes, mode 0600, when
   * missing and the state file is missing too. */
  const char *secret_path;
} vasp_asp_opts;

/* Opens the ASP in opts->state_dir: loads "asp.state", or creates the keys,
 * certificates and state on first use. A corrupt, truncated, foreign or
 * undecryptable state file gives VASP_E_STATE and is left untouched. All
 * registers start at zero (a boot). *out is the caller's; release it with
 * vasp_asp_close(). */
VASP_API int vasp_asp_open(const vasp_asp_opts *opts, vasp_asp **out);

/* Zeroes key material and frees the handle. NULL is a no-op. */
VASP_API void vasp_asp_close(vasp_asp *asp);

/* Certificates, DER. */
typedef enum vasp_cert_kind {
  VASP_CERT_CA = 0, /* the local "manufacturer" CA (self-signed) */
  VASP_CERT_EK = 1, /* endorsement key, issued by the CA */
  VASP_CERT_AK = 2, /* attestation key, issued by the EK */
  VASP_CERT_TRANSPORT = 3 /* transport key (ECDH P-256, keyAgreement), issued by the AK;
                             drawn anew by every vasp_asp_open, never persisted */
} vasp_cert_kind;

/* Returns a DER certificate in *out (caller's; vasp_free()). */
VASP_API int vasp_asp_cert(vasp_asp *asp, uint32_t kind, uint8_t **out, size_t *out_len);

/* Extends register `reg` in both banks with the digest (in that bank's
 * algorithm) of data[0..len), and appends an event-log entry carrying
 * `description` (UTF-8, borrowed, at most 1024 bytes). */
VASP_API int vasp_asp_extend(vasp_asp *asp, uint32_t reg, const uint8_t *data,
                    size_t len, const char *description);

/* Active measurement: the ASP reads the file at `path` itself, extends
 * register `reg` with its digest, logs it with `description`, and writes the
 * SHA-256 digest of the file to digest_out (32 bytes, caller's). */
VASP_API int vasp_asp_measure_file(vasp_asp *asp, uint32_t reg, const char *path,
                          const char *description, uint8_t *digest_out);

/* Copies register `reg` of bank `alg` to out (32 bytes, caller's). */
VASP_API int vasp_asp_read(vasp_asp *asp, uint32_t alg, uint32_t reg, uint8_t *out);

/* Returns the event log as UTF-8 JSON in *out (caller's; vasp_free()):
 * [{"reg":N,"sha256":"hex","sm3":"hex","description":"..."}, ...] */
VASP_API int vasp_asp_event_log(vasp_asp *asp, uint8_t **out, size_t *out_len);

/* Quotes the registers in reg_mask (bit i = register i) of bank `alg`,
 * signed with the attestation key. The quote is returned in *out (caller's;
 * vasp_free()): the attested message followed by the signature, laid out as
 * documented in docs/quote-format.md:
 *   "VASPQT01" | u16 alg | u16 nonce_len | u32 reg_mask | nonce |
 *   32 bytes per selected register, ascending | sig, 64 bytes: ECDSA P-256
 *   r || s (big-endian, IEEE P1363) over the SHA-256 of everything before it.
 *   Integers little-endian.
 * nonce_len is 1..64 bytes. */
VASP_API int vasp_asp_quote(vasp_asp *asp, uint32_t alg, uint32_t reg_mask,
                   const uint8_t *nonce, size_t nonce_len, uint8_t **out,
                   size_t *out_len);

/* Signs data[0..len) with the attestation key: ECDSA P-256 over the SHA-256
 * of "VASPSG01" || data (8 ASCII bytes, then the data), written to sig_out
 * (64 bytes, caller's) as r || s (big-endian, IEEE P1363), the form of a
 * quote's signature. The domain prefix keeps such a signature from ever
 * passing for a quote ("VASPQT01" …) or a certificate (DER, 0x30 …), the
 * other things the AK signs. data may be NULL when len is 0. */
VASP_API int vasp_asp_sign(vasp_asp *asp, const uint8_t *data, size_t len, uint8_t *sig_out);

/* AES-256-GCM under the storage key. aad (may be NULL if aad_len is 0) is
 * authenticated, not stored. The sealed blob is returned in *out (caller's;
 * vasp_free()). */
VASP_API int vasp_asp_seal(vasp_asp *asp, const uint8_t *data, size_t len,
                  const uint8_t *aad, size_t aad_len, uint8_t **out,
                  size_t *out_len);
/* Reverses vasp_asp_seal; VASP_E_AUTH when the blob or aad does not match. */
VASP_API int vasp_asp_unseal(vasp_asp *asp, const uint8_t *blob, size_t len,
                    const uint8_t *aad, size_t aad_len, uint8_t **out,
                    size_t *out_len);

/* Monotonic counters, by name (1..64 bytes of [A-Za-z0-9._:-]), persisted
 * before the call returns. Increment creates the counter at 0 first if
 * missing, then adds one; the new value is written to *value. */
VASP_API int vasp_asp_counter_increment(vasp_asp *asp, const char *name,
                               uint64_t *value);
/* VASP_E_NOT_FOUND when the counter does not exist. */
VASP_API int vasp_asp_counter_read(vasp_asp *asp, const char *name, uint64_t *value);
/* Reads a counter from the state file of opts->state_dir without opening the
 * ASP: no lock is taken (a running server may hold it) and nothing is
 * created or written. The file is replaced atomically by its writer, so the
 * value is one the ASP persisted. Needs read access to the host secret and
 * the state file. VASP_E_NOT_FOUND when there is no state file or no such
 * counter; VASP_E_STATE/VASP_E_IO as vasp_asp_open. The message is
 * vasp_errmsg(NULL). */
VASP_API int vasp_asp_counter_peek(const vasp_asp_opts *opts, const char *name,
                                   uint64_t *value);

/* ------------------------------------------------------------------------ */
/* vASP instances                                                            */

typedef struct vasp_instance vasp_instance;

/* Creates an instance for the VM `vm_uuid` (canonical 36-character UUID)
 * whose configuration digest is config_digest (32 bytes): a fresh ECDSA P-256
 * key and an X.509 certificate issued by the ASP's attestation key carrying
 * the binding (VM UUID, instance ID, configuration digest). The instance
 * borrows `asp`, which must outlive it. *out is the caller's; release with
 * vasp_instance_close() or vasp_instance_destroy(). */
VASP_API int vasp_instance_create(vasp_asp *asp, const char *vm_uuid,
                         const uint8_t *config_digest, vasp_instance **out);

/* Frees the handle (zeroing key material); the instance lives on in blobs it
 * exported. NULL is a no-op. */
VASP_API void vasp_instance_close(vasp_instance *inst);

/* Destroys the instance for good: the ASP records its instance ID as
 * destroyed (persisted, so its blobs never import again), key material is
 * zeroed and the handle freed. The handle is invalid afterwards, whatever the
 * return code. */
VASP_API int vasp_instance_destroy(vasp_instance *inst);

/* Writes the instance ID (32 lowercase hex characters and a NUL) to out
 * (33 bytes, caller's). */
VASP_API int vasp_instance_id(vasp_instance *inst, char *out);

/* Returns the instance certificate (DER) in *out (caller's; vasp_free()). */
VASP_API int vasp_instance_cert(vasp_instance *inst, uint8_t **out, size_t *out_len);

/* As vasp_asp_extend, vasp_asp_read, vasp_asp_event_log and vasp_asp_quote,
 * on the instance's own registers and key. */
VASP_API int vasp_instance_extend(vasp_instance *inst, uint32_t reg,
                         const uint8_t *data, size_t len,
                         const char *description);
VASP_API int vasp_instance_read(vasp_instance *inst, uint32_t alg, uint32_t reg,
                       uint8_t *out);
VASP_API int vasp_instance_event_log(vasp_instance *inst, uint8_t **out,
                            size_t *out_len);
VASP_API int vasp_instance_quote(vasp_instance *inst, uint32_t alg, uint32_t reg_mask,
                        const uint8_t *nonce, size_t nonce_len, uint8_t **out,
                        size_t *out_len);

/* Flags for export and import. */
#define VASP_SNAPSHOT 1u

/* Exports the whole instance state sealed under the ASP storage key, with the
 * binding as authenticated data and the next value of the VM's export counter
 * inside. With VASP_SNAPSHOT the blob is also registered as a snapshot of the
 * VM, so it stays importable after newer exports. The blob is returned in
 * *out (caller's; vasp_free()); its counter value in *counter. */
VASP_API int vasp_instance_export(vasp_instance *inst, uint32_t flags, uint8_t **out,
                         size_t *out_len, uint64_t *counter);

/* Imports a blob exported for VM `vm_uuid`. Refused with: VASP_E_AUTH (not
 * sealed by this ASP, or altered), VASP_E_BINDING (for another VM),
 * VASP_E_ROLLBACK (older than the newest export of that VM and not presented
 * with VASP_SNAPSHOT as a registered snapshot), VASP_E_DESTROYED (its instance
 * was destroyed). *out is the caller's, as for vasp_instance_create. */
VASP_API int vasp_instance_import(vasp_asp *asp, const char *vm_uuid,
                         const uint8_t *blob, size_t len, uint32_t flags,
                         vasp_instance **out);

/* Migration to another ASP (docs/quote-format.md, "Migration blob"). The
 * destination hands out its transport key certificate (VASP_CERT_TRANSPORT);
 * the caller verifies its chain TK -> AK -> EK -> CA before sealing to it. */

/* Seals the instance to the ASP whose transport key certificate (DER,
 * borrowed) is tk_cert: ECDH with a fresh ephemeral key, AES-256-GCM, signed
 * by this ASP's AK. Like vasp_instance_export, it takes the VM's next export
 * counter (persisted before the blob is returned), so older blobs of the VM
 * no longer import here. VASP_E_ARG when tk_cert does not parse exactly, its
 * key is not EC P-256, its key usage lacks keyAgreement, or it is this ASP's
 * own transport key. The blob is returned in *out (caller's; vasp_free());
 * its counter value in *counter. The counter also exceeds `after` (the
 * destination's vasp_asp_vm_counter for the VM), by at most 2^32 past this
 * ASP's newest (VASP_E_ARG beyond). */
VASP_API int vasp_instance_export_to(vasp_instance *inst, const uint8_t *tk_cert,
                                     size_t tk_cert_len, uint64_t after, uint8_t **out,
                                     size_t *out_len, uint64_t *counter);
/* The newest export or import counter this ASP recorded for a VM (0: none),
 * which a destination gives a source as `after`: the transfer's counter must
 * exceed it, or the destination would refuse the blob as a replay (it may
 * have sealed a VM whose migration then failed). */
VASP_API int vasp_asp_vm_counter(vasp_asp *asp, const char *vm_uuid, uint64_t *newest);

/* Imports a migration blob sealed to this ASP's current transport key for VM
 * vm_uuid, signed by the AK of source_ak_cert (DER, borrowed; the caller has
 * verified its chain, and that the blob's source ASP ID is that chain's EK).
 * Refused, in this order, with: VASP_E_AUTH (not a migration blob; sealed to
 * another transport key, which includes an earlier open of this ASP),
 * VASP_E_BINDING (for another VM), VASP_E_AUTH (not signed by that AK),
 * VASP_E_ARG (sealed by this ASP itself), VASP_E_AUTH (altered),
 * VASP_E_DESTROYED (its instance was destroyed here), VASP_E_ROLLBACK (its
 * counter is not above the newest this ASP recorded for the VM: replayed or
 * older). On success the counter is recorded as the VM's newest and
 * persisted, so the blob never imports again. *out is the caller's, as for
 * vasp_instance_create. */
VASP_API int vasp_instance_import_from(vasp_asp *asp, const char *vm_uuid, const uint8_t *blob,
                                       size_t len, const uint8_t *source_ak_cert,
                                       size_t source_ak_cert_len, vasp_instance **out);

/* Unregisters a snapshot (by its counter value); VASP_E_NOT_FOUND if it was
 * not registered. */
VASP_API int vasp_asp_snapshot_forget(vasp_asp *asp, const char *vm_uuid,
                             uint64_t counter);

/* ------------------------------------------------------------------------ */
/* Guest memory introspection                                                */

typedef struct vasp_guest vasp_guest;

typedef struct vasp_guest_opts {
  /* RAM file (memory-backend-file mem-path, or a raw physical dump). */
  const char *path;
  /* Bytes of RAM placed below the PCI hole; RAM beyond them continues at
   * guest-physical 4 GiB. 0 means the whole file sits below 4 GiB. */
  uint64_t below_4g;
} vasp_guest_opts;

/* Maps the RAM file read-only. *out is the caller's; vasp_guest_close(). */
VASP_API int vasp_guest_open(const vasp_guest_opts *opts, vasp_guest **out);
VASP_API void vasp_guest_close(vasp_guest *g);

/* Guest RAM size in bytes (the file's size when it was opened). */
VASP_API int vasp_guest_size(vasp_guest *g, uint64_t *size);

/* Copies len bytes at guest-physical gpa to buf (caller's). VASP_E_RANGE when
 * any byte lies outside guest RAM (or the file shrank). */
VASP_API int vasp_guest_read_phys(vasp_guest *g, uint64_t gpa, uint8_t *buf, size_t len);

/* Paging modes for translation. */
#define VASP_PAGING_4LEVEL 0u
#define VASP_PAGING_5LEVEL 1u

/* Translates guest-virtual gva with the page tables rooted at cr3 (the CR3
 * register value; low 12 bits and bits 63..52 ignored). VASP_E_WALK with the
 * level and entry in the message when the walk fails. */
VASP_API int vasp_guest_translate(vasp_guest *g, uint64_t cr3, uint32_t paging,
                         uint64_t gva, uint64_t *gpa);

/* Copies len bytes at guest-virtual gva (walking page by page) to buf. */
VASP_API int vasp_guest_read_virt(vasp_guest *g, uint64_t cr3, uint32_t paging,
                         uint64_t gva, uint8_t *buf, size_t len);

/* One region to measure, as laid out in the regions array of
 * vasp_guest_measure: 24 bytes, little-endian, no padding. */
typedef struct vasp_guest_region {
  uint64_t addr;  /* guest-physical or guest-virtual */
  uint64_t len;   /* bytes, > 0 */
  uint32_t flags; /* VASP_REGION_VIRT for a virtual address */
  uint32_t alg;   /* vasp_alg */
} vasp_guest_region;

#define VASP_REGION_VIRT 1u

/* Measures n regions in one call: writes n digests (n * VASP_DIGEST_LEN
 * bytes, caller's) to digests and n return codes (caller's) to status. A
 * failed region gets an all-zero digest and its code; the call returns
 * VASP_OK when every region was measured, else the first failure's code with
 * its message. */
VASP_API int vasp_guest_measure(vasp_guest *g, uint64_t cr3, uint32_t paging,
                       const vasp_guest_region *regions, size_t n,
                       uint8_t *digests, int32_t *status);

/* ------------------------------------------------------------------------ */
/* Unix stream sockets that carry file descriptors                           */
/*
 * Deno's sockets cannot send or receive SCM_RIGHTS ancillary data; the QMP gate
 * does its socket I/O here. A vasp_sock owns one socket descriptor (close-on-
 * exec). Every descriptor the library opens or receives is close-on-exec.
 *
 * Threads: the exception to "one handle, one thread". One vasp_sock_accept or
 * vasp_sock_recv, one vasp_sock_send and any number of vasp_sock_shutdown
 * calls may run at once on different threads (the bindings run the blocking
 * calls on worker threads). vasp_sock_recv and vasp_sock_accept record their
 * failure message where vasp_sock_rx_errmsg() finds it, vasp_sock_send where
 * vasp_errmsg(sock) does, and the calls without a handle to use and
 * vasp_sock_shutdown on the calling thread's slot, vasp_errmsg(NULL).
 * vasp_sock_close() only once no call runs.
 */

typedef struct vasp_sock vasp_sock;

/* The most descriptors one vasp_sock_recv or vasp_sock_send carries. */
#define VASP_SOCK_MAX_FDS 16u

/* Binds and listens on a new socket at `path` (an existing file there is an
 * error). *out is the caller's; release it with vasp_sock_close(). */
VASP_API int vasp_sock_listen(const char *path, vasp_sock **out);

/* Takes over `fd`, an inherited listening Unix stream socket, and marks it
 * close-on-exec. On success the handle owns fd (vasp_sock_close closes it);
 * on failure fd is left open and the caller's. *out is the caller's. */
VASP_API int vasp_sock_adopt(int32_t fd, vasp_sock **out);

/* Connects to the listening socket at `path`. VASP_E_NOT_FOUND when nothing
 * listens there (no such file, or connection refused), so callers can retry.
 * *out is the caller's; release it with vasp_sock_close(). */
VASP_API int vasp_sock_connect(const char *path, vasp_sock **out);

/* Blocks until a client connects to `listener`. VASP_E_CLOSED once the
 * listener was shut down. *out is the caller's; release it with
 * vasp_sock_close(). */
VASP_API int vasp_sock_accept(vasp_sock *listener, vasp_sock **out);

/* A flag of vasp_sock_send. */
#define VASP_SOCK_DONTWAIT 1u

/* Blocks until bytes arrive: writes up to cap of them to buf (caller's) and
 * their count to *out_len (0: the peer closed, or the socket was shut down),
 * and the descriptors that came with them to fds (caller's, room for fd_cap,
 * at most VASP_SOCK_MAX_FDS are taken) and their count to *out_nfds. The
 * received descriptors are the caller's: pass them on with vasp_sock_send or
 * close them with vasp_fd_close(). Descriptors beyond the room are closed. */
VASP_API int vasp_sock_recv(vasp_sock *s, uint8_t *buf, size_t cap, size_t *out_len,
                            int32_t *fds, uint32_t fd_cap, uint32_t *out_nfds);

/* Failure message of the last vasp_sock_recv or vasp_sock_accept on s. Owned
 * by the library; never NULL. */
VASP_API const char *vasp_sock_rx_errmsg(const vasp_sock *s);

/* Sends buf[0..len) with the descriptors fds[0..nfds) (borrowed: the caller
 * still owns and closes its copies; the peer gets its own) attached to the
 * first byte. Blocks until at least one byte is sent, or with
 * VASP_SOCK_DONTWAIT returns at once with *out_sent 0 when the socket's
 * buffer is full (then nothing, descriptors included, was sent). *out_sent
 * is how many bytes went; the descriptors went with the first of them. */
VASP_API int vasp_sock_send(vasp_sock *s, const uint8_t *buf, size_t len,
                            const int32_t *fds, uint32_t nfds, uint32_t flags,
                            size_t *out_sent);

/* Shuts the socket down in both directions: a vasp_sock_recv waiting on it
 * returns 0 bytes, a vasp_sock_accept VASP_E_CLOSED. The handle stays valid. */
VASP_API int vasp_sock_shutdown(vasp_sock *s);

/* Closes the socket and frees the handle. NULL is a no-op. */
VASP_API void vasp_sock_close(vasp_sock *s);

/* Closes a descriptor the caller owns (one vasp_sock_recv returned). */
VASP_API int vasp_fd_close(int32_t fd);

/* What a descriptor of this process is, as its /proc link says: "socket",
 * "pipe", "file" (a path) or "other" (also for one that is not open). What
 * the QMP gate decides a `migrate` to `fd:NAME` by. Static storage. */
VASP_API const char *vasp_fd_kind(int32_t fd);

/* The QMP gate's fast lane. Starting a VM, libvirt sends QEMU about 400
 * monitor commands one after the other, nearly all queries; a trip through
 * the engine's event loop costs each about 0.3 ms. A lane is a thread that
 * relays one gate connection and passes such a query and its reply itself:
 *
 *   libvirt <-> lane <-> QEMU
 *                ^
 *                +---> engine (the ends vasp_lane_open returns)
 *
 * Everything libvirt or QEMU sends goes to the engine, byte for byte with
 * its descriptors, and everything the engine sends on its ends goes out, in
 * order; except that while the engine holds nothing of the connection (its
 * last vasp_lane_idle report counts every byte handed to it), a read from
 * libvirt that is exactly one command named in the list — a strict subset
 * of JSON QEMU reads as plain JSON, at most 4096 bytes, no descriptors — goes
 * to QEMU directly, and QEMU's reply to it (the next line with a top-level
 * "return" or "error") to libvirt. libvirt's next message waits for that
 * reply; QEMU's events meanwhile go to the engine, and the reply after them.
 * getfd (with its one descriptor) and closefd pass only with arguments of
 * exactly {"fdname": NAME}; what they do to QEMU's named descriptors is noted
 * for the engine (vasp_lane_notes). The lane ends once the engine has closed
 * both its ends. */
typedef struct vasp_lane vasp_lane;

/* Starts a lane between client (libvirt) and upstream (QEMU), connected
 * sockets no call runs on. names: the commands the lane may pass, separated
 * by newlines. On success the lane owns both descriptors and has freed both
 * handles (do not use or close them), *out_client and *out_upstream are the
 * engine's ends (caller's, vasp_sock_close), and *out is the caller's:
 * release it with vasp_lane_free(). On failure nothing changed. */
VASP_API int vasp_lane_open(vasp_sock *client, vasp_sock *upstream, const char *names,
                            vasp_lane **out, vasp_sock **out_client,
                            vasp_sock **out_upstream);

/* The engine holds nothing of the connection, having taken in client_bytes
 * bytes on its client end and upstream_bytes on its upstream end, and sent
 * everything it will send for them. Any thread. */
VASP_API int vasp_lane_idle(vasp_lane *l, uint64_t client_bytes, uint64_t upstream_bytes);

/* Moves the notes of the getfd and closefd the lane passed, oldest first, to
 * buf (caller's, cap bytes; 64 KiB always suffices): lines "getfd NAME KIND"
 * (KIND socket, pipe, file or other, as the descriptor's /proc link says) and
 * "closefd NAME". VASP_E_ARG, nothing moved, when they do not fit. The engine
 * reads them before it decides anything else of the connection. Any thread. */
VASP_API int vasp_lane_notes(vasp_lane *l, char *buf, size_t cap, size_t *out_len);

/* How many commands the lane passed itself. */
VASP_API uint64_t vasp_lane_passed(vasp_lane *l);

/* Releases the caller's reference; the lane's thread ends by itself. NULL is
 * a no-op. */
VASP_API void vasp_lane_free(vasp_lane *l);

/* ------------------------------------------------------------------------ */
/* Streamed file measurement (disk images, boot files)                       */

/* A file's identity: what changes when its content can have changed. Times
 * are to the nanosecond; ctime changes on every write and on every
 * timestamp reset (touch -d), which a caller cannot set back. 56 bytes,
 * little-endian, no padding. */
typedef struct vasp_file_id {
  uint64_t dev;
  uint64_t ino;
  uint64_t size;
  int64_t mtime_sec;
  int64_t mtime_nsec;
  int64_t ctime_sec;
  int64_t ctime_nsec;
} vasp_file_id;

/* Writes the identity of the regular file at path (symlinks followed) to
 * *out. VASP_E_IO when it cannot be stat'ed or is not a regular file. */
VASP_API int vasp_file_stat(const char *path, vasp_file_id *out);

/* Streams the regular file at path (256 KiB at a time: constant memory,
 * any size) and writes its SHA-256 to sha256_out, its SM3 to sm3_out when
 * not NULL (each VASP_DIGEST_LEN bytes, caller's), and the identity it had
 * while read to *id_out. VASP_E_IO when it cannot be read, is not a regular
 * file, or changed while it was read (identity or length differs after).
 * The failure's message is also written to msg_out (caller's, msg_len bytes,
 * NUL-terminated; may be NULL): a caller that runs this on a worker thread
 * cannot read that thread's vasp_errmsg(NULL). */
VASP_API int vasp_file_digest(const char *path, uint8_t *sha256_out, uint8_t *sm3_out,
                              vasp_file_id *id_out, char *msg_out, size_t msg_len);

/* Extends reg of the instance as vasp_instance_extend would with data whose
 * digests are sha256 and sm3 (VASP_DIGEST_LEN bytes each, borrowed): what
 * vasp_file_digest measured, so a file is read once, streamed, whatever its
 * size. The event log entry carries these digests. */
VASP_API int vasp_instance_extend_digests(vasp_instance *inst, uint32_t reg,
                                          const uint8_t *sha256, const uint8_t *sm3,
                                          const char *description);

/* ------------------------------------------------------------------------- */
/* Keyed change detection                                                    */
/*
 * GMAC (AES-256-GCM, data as AAD, fixed IV) under a key the library draws at
 * random the first time it needs one and keeps in its own memory for the life
 * of the process: never returned, never written anywhere. Tags are equal for
 * equal bytes within one process and meaningless outside it; they tell that
 * bytes changed, not what they are (that is what the SHA-256 digest is for).
 */

#define VASP_MAC_LEN 16u

/* MACs n guest regions (the layout of vasp_guest_measure; `alg` is ignored)
 * in one call: writes n tags (n * VASP_MAC_LEN bytes, caller's) to tags and n
 * return codes (caller's) to status. A failed region gets an all-zero tag and
 * its code; the call returns VASP_OK when every region was read, else the
 * first failure's code with its message. */
VASP_API int vasp_guest_mac(vasp_guest *g, uint64_t cr3, uint32_t paging,
                            const vasp_guest_region *regions, size_t n, uint8_t *tags,
                            int32_t *status);

/* MACs n regions of caller memory in one call under the same key; writes
 * n * VASP_MAC_LEN bytes (caller's) to tags, one tag per region in order. */
VASP_API int vasp_mac_batch(const vasp_mem_region *regions, size_t n, uint8_t *tags);

#ifdef __cplusplus
}
#endif

#endif /* VASP_H */
