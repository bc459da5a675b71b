#!/usr/bin/env bash
# Installs the Debian tools kws uses when they are missing: espeak-ng (offline speech), the Arm cross
# compiler, newlib and its C++ library (Cortex-M builds), qemu-system-arm (running Cortex-M programs), chromium (headless
# screenshot of the growth report). Idempotent and quiet when everything is present; says clearly what it could
# not install and what that disables.
set -u
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib ] || [ -e /usr/lib/arm-none-eabi/lib ] || need+=(libnewlib-arm-none-eabi)
# Debian's arm-none-eabi-g++ has no C++ headers (<new>, <cstdint>) without this package: the Arduino / Mbed glue
# is C++. tests/test_firmware.py compiles a file including <new> with it.
[ -e /usr/include/newlib/c++ ] || [ -d /usr/lib/arm-none-eabi/include/c++ ] || need+=(libstdc++-arm-none-eabi-newlib)
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
optional=()
command -v chromium >/dev/null 2>&1 || optional+=(chromium)
[ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
echo "install: Debian packages missing: ${need[*]} ${optional[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; }; then
  echo "install: cannot install ${need[*]} ${optional[*]} (no apt-get or no root); synth data, firmware builds, QEMU runs and the report screenshot will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if [ ${#need[@]} -gt 0 ] && ! $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  echo "install: apt-get install ${need[*]} failed; synth data, firmware builds and QEMU runs will be skipped" >&2
fi
if [ ${#optional[@]} -gt 0 ] && ! $SUDO apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null 2>&1; then
  echo "install: apt-get install ${optional[*]} failed; the report screenshot test will be skipped" >&2
fi
exit 0
