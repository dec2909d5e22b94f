#!/usr/bin/env bash
# Installs what building a TinyModel needs besides the .NET SDK: the Arm GNU toolchain (arm-none-eabi-gcc), the newlib
# C library headers for it, and qemu-system-arm (used to verify the generated library on an emulated Cortex-M).
# Idempotent: installs nothing when all three are present. Debian/Ubuntu (apt-get); uses sudo when not root.
set -euo pipefail

newlib_header() {
  local candidate
  for candidate in \
    /usr/lib/arm-none-eabi/include/stdio.h \
    /usr/arm-none-eabi/include/stdio.h \
    /usr/include/newlib/stdio.h; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  # A toolchain elsewhere (for example an Arm GNU Toolchain tarball on PATH) knows its own sysroot.
  if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    candidate="$(echo '#include <stdio.h>' | arm-none-eabi-gcc -E -x c - -o /dev/null -H 2>&1 | awk '/stdio.h$/ {print $2; exit}')" || true
    if [ -n "${candidate:-}" ] && [ -f "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  fi
  return 1
}

report() {
  local gcc qemu header
  gcc="$(command -v arm-none-eabi-gcc 2>/dev/null || true)"
  qemu="$(command -v qemu-system-arm 2>/dev/null || true)"
  header="$(newlib_header || true)"
  echo "arm-none-eabi-gcc: ${gcc:-missing}${gcc:+ ($(arm-none-eabi-gcc -dumpversion 2>/dev/null || echo '?'))}"
  echo "newlib headers:    ${header:-missing}"
  echo "qemu-system-arm:   ${qemu:-missing}${qemu:+ ($(qemu-system-arm --version 2>/dev/null | head -n1 | sed 's/^QEMU emulator version //' || echo '?'))}"
  [ -n "$gcc" ] && [ -n "$qemu" ] && [ -n "$header" ]
}

if report; then
  echo "install-prerequisites: all present, nothing to install."
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prerequisites: apt-get not found; install gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (or equivalents) by hand." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-prerequisites: not root and sudo not found; run as root or install the packages by hand." >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-prerequisites: installing gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm ..."
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y \
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

if report; then
  echo "install-prerequisites: done."
else
  echo "install-prerequisites: something is still missing after the install." >&2
  exit 1
fi
