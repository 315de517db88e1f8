#!/bin/sh
# Installs vASP on a Debian host running libvirt, or removes it. As root:
#   npx --yes deno@2.9.6 task install               (sh tools/install.sh install)
#   npx --yes deno@2.9.6 task uninstall [--purge]   (sh tools/install.sh uninstall [--purge])
#
# install builds what is stale (sh tools/build.sh), then places:
#   /usr/local/lib/vasp/deno             the Deno binary running this script (a copy, not a path
#                                        into an npm cache)
#   /usr/local/lib/vasp/dist/            the engine bundle; policies/ beside it, the default set
#   /usr/local/lib/vasp/libvasp.so       the native library
#   /usr/local/bin/vasp                  the `vasp` command (sh: the pinned Deno on the bundle)
#   /usr/local/libexec/vasp-qemu         the QEMU wrapper for libvirt's <emulator>
#   /etc/vasp/qemu-wrapper.conf, /etc/vasp/hook.conf   (kept when they exist)
#   /etc/libvirt/hooks/qemu.d/vasp       the libvirt hook (libvirt >= 6.5 runs every script in
#                                        qemu.d; a file of that name that is not vASP's stops it)
#   /etc/systemd/system/vasp.service     the unit (not enabled, not started)
#   group vasp, with QEMU's user (libvirt-qemu) in it
#   /var/lib/vasp                        root:vasp 2710: the group may pass through, not list;
#                                        what the server creates inherits the group (set-gid),
#                                        its socket is 0660 and every other file 0600 (umask 077)
# Each path and account it creates is written to /usr/local/lib/vasp/MANIFEST. uninstall removes
# exactly those (a configuration file only when unchanged) and keeps the state directory and the
# group that owns it; --purge removes them too. Both can be run again and again.
set -eu
cd "$(dirname "$0")/.."

libdir=/usr/local/lib/vasp
bindir=/usr/local/bin
libexecdir=/usr/local/libexec
confdir=/etc/vasp
hookdir=/etc/libvirt/hooks/qemu.d
unitdir=/etc/systemd/system
statedir=/var/lib/vasp
group=vasp
qemu_user=${VASP_QEMU_USER:-libvirt-qemu}
manifest=$libdir/MANIFEST
# What is kept after an uninstall without --purge, for a later --purge or install.
kept=$statedir/.install-kept
# A line every version of vASP's hook carries.
hook_mark="vASP hook for libvirt"

say() { printf 'vasp: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# record KIND PATH…: one manifest line, once.
record() {
  grep -qxF "$*" "$manifest.new" 2>/dev/null || printf '%s\n' "$*" >>"$manifest.new"
}

# make_dir DIR MODE: creates DIR and its missing parents, recording each one it created.
make_dir() {
  [ -d "$1" ] && return 0
  make_dir "$(dirname "$1")" 0755
  mkdir -m "$2" "$1"
  record dir "$1"
}

# place SRC DEST MODE: replaces DEST in one rename (a running copy keeps its old inode).
place() {
  install -m "$3" "$1" "$2.new"
  mv -f "$2.new" "$2"
  record file "$2"
}

# place_tree SRC DEST: replaces the directory DEST by a copy of SRC (files 0644).
place_tree() {
  rm -rf "$2.new"
  cp -R "$1" "$2.new"
  chmod -R u=rwX,go=rX "$2.new"
  rm -rf "$2"
  mv "$2.new" "$2"
  record tree "$2"
}

# place_conf DEST CONTENT: writes a configuration file unless one is there.
place_conf() {
  if [ -e "$1" ]; then
    grep -qF "conf $1 " "$manifest.new" 2>/dev/null || say "kept your $1"
    return 0
  fi
  printf '%s\n' "$2" >"$1.new"
  chmod 0644 "$1.new"
  mv -f "$1.new" "$1"
  record conf "$1" "$(sha256sum "$1" | cut -d' ' -f1)"
}

install_all() {
  deno=${DENO:-}
  if [ -z "$deno" ]; then
    deno=$(deno eval --no-config 'console.log(Deno.execPath())') ||
      die "cannot find the Deno binary; set DENO=/path/to/deno"
  fi
  [ -x "$deno" ] || die "not an executable: $deno"
  [ -n "${VASP_SKIP_BUILD:-}" ] || sh tools/build.sh
  for f in dist/vasp.js dist/wal_checkpointer_worker.js native/build/libvasp.so; do
    [ -f "$f" ] || die "missing $f: run sh tools/build.sh"
  done
  if [ -f "$hookdir/vasp" ] && ! grep -qF "$hook_mark" "$hookdir/vasp"; then
    die "$hookdir/vasp exists and is not vASP's hook; not overwriting it (move it away first)"
  fi

  new_lib=""
  [ -d "$libdir" ] || new_lib=1
  mkdir -p "$libdir"
  : >"$manifest.new"
  if [ -n "$new_lib" ]; then record dir "$libdir"; fi
  if [ -f "$manifest" ]; then cat "$manifest" >>"$manifest.new"; fi
  if [ -f "$kept" ]; then cat "$kept" >>"$manifest.new"; fi

  place "$deno" "$libdir/deno" 0755
  place_tree dist "$libdir/dist"
  place native/build/libvasp.so "$libdir/libvasp.so" 0644
  place_tree policies "$libdir/policies"

  make_dir "$bindir" 0755
  cat >"$libdir/vasp.sh" <<LAUNCHER
#!/bin/sh
# The vASP command (installed by tools/install.sh): the pinned Deno on the engine bundle.
# umask 077: what the server writes in $statedir stays its own (the socket is set to 0660).
umask 077
VASP_NATIVE_LIB=$libdir/libvasp.so
VASP_STATE_DIR=\${VASP_STATE_DIR:-$statedir}
DENO_NO_UPDATE_CHECK=1
export VASP_NATIVE_LIB VASP_STATE_DIR DENO_NO_UPDATE_CHECK
exec $libdir/deno run --no-config --allow-all $libdir/dist/vasp.js "\$@"
LAUNCHER
  place "$libdir/vasp.sh" "$bindir/vasp" 0755
  rm -f "$libdir/vasp.sh"

  make_dir "$libexecdir" 0755
  place deploy/qemu/vasp-qemu "$libexecdir/vasp-qemu" 0755
  make_dir "$confdir" 0755
  place_conf "$confdir/qemu-wrapper.conf" "qemu=/usr/bin/qemu-system-x86_64
gate=$bindir/vasp gate
server=$statedir/hook.sock"
  place_conf "$confdir/hook.conf" "socket=$statedir/hook.sock
timeout=5"
  make_dir "$hookdir" 0755
  place native/build/vasp-hook "$hookdir/vasp" 0755
  if [ -f /etc/libvirt/hooks/qemu ] && grep -qF "$hook_mark" /etc/libvirt/hooks/qemu; then
    say "/etc/libvirt/hooks/qemu is an older vASP hook: remove it, or libvirt asks twice"
  fi
  make_dir "$unitdir" 0755
  place deploy/systemd/vasp.service "$unitdir/vasp.service" 0644

  if ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    record group "$group"
  fi
  if id "$qemu_user" >/dev/null 2>&1; then
    if ! id -nG "$qemu_user" | tr ' ' '\n' | grep -qx "$group"; then
      usermod -a -G "$group" "$qemu_user"
      record member "$qemu_user" "$group"
    fi
  else
    say "no user $qemu_user (libvirt's QEMU user): install libvirt, then run this again"
  fi
  if [ ! -d "$statedir" ]; then
    make_dir "$(dirname "$statedir")" 0755
    mkdir -m 2710 "$statedir"
  fi
  chown "root:$group" "$statedir"
  chmod 2710 "$statedir"
  record state "$statedir"
  rm -f "$kept"

  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
  mv -f "$manifest.new" "$manifest"
  say "installed; next: vasp serve --learn-host (once), systemctl enable --now vasp," \
    "restart libvirtd (see deploy/libvirt/README.md)"
}

uninstall_all() {
  purge=$1
  list=""
  [ -f "$manifest" ] && list=$(cat "$manifest")
  [ -f "$kept" ] && list="$list
$(cat "$kept")"
  if [ -z "$(printf '%s' "$list" | tr -d '\n')" ]; then
    say "nothing installed (no $manifest)"
    return 0
  fi
  if [ -d /run/systemd/system ] && [ -f "$unitdir/vasp.service" ]; then
    systemctl disable --now vasp.service || true
  fi
  rm -f "$manifest"
  keep=""
  # Newest first: files before the directories that hold them.
  printf '%s\n' "$list" | sed -n '1!G;h;$p' | {
    while read -r kind path extra; do
      case $kind in
        file) rm -f "$path" ;;
        tree) rm -rf "$path" ;;
        dir) rmdir "$path" 2>/dev/null || say "kept $path (not empty)" ;;
        conf)
          if [ -f "$path" ] && [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$extra" ]; then
            rm -f "$path"
          elif [ -e "$path" ]; then
            say "kept $path (changed since install)"
          fi ;;
        member) gpasswd -d "$path" "$extra" >/dev/null 2>&1 || true ;;
        group | state)
          if [ "$purge" = 1 ]; then
            if [ "$kind" = state ]; then rm -rf "$path"; else groupdel "$path"; fi
          else
            keep="$keep$kind $path
"
          fi ;;
        '') ;;
        *) say "unknown manifest line: $kind $path" ;;
      esac
    done
    if [ -n "$keep" ] && [ -d "$statedir" ]; then
      printf '%s' "$keep" >"$kept"
      chmod 0600 "$kept"
      say "kept $statedir and group $group (remove them with: uninstall --purge)"
    fi
  }
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
  say "uninstalled"
}

[ "$(id -u)" -eq 0 ] || die "install and uninstall need root"
# One install or uninstall at a time on this host.
exec 9>/run/vasp-install.lock
flock 9
case ${1:-} in
  install) install_all ;;
  uninstall)
    case ${2:-} in
      --purge) uninstall_all 1 ;;
      '') uninstall_all 0 ;;
      *) die "usage: sh tools/install.sh uninstall [--purge]" ;;
    esac ;;
  *) die "usage: sh tools/install.sh install | uninstall [--purge]" ;;
esac
