#!/bin/sh
# init of the Linux 6.1 test guest: Debian's User-Mode Linux (the kernel
# Debian 12 ships) booted on this machine's own root file system (hostfs),
# so the real vnetkit binary and real tools run under 6.1. See
# test_linux61.py.
#
# Such a guest writes to the host's files as root: everything it writes goes
# to tmpfs mounts made here (/run, /tmp, /lib/modules); it ends with
# `poweroff -f` whatever happens. The kernel hands the unknown VAR=value
# words of its command line to this script's environment: VNK_DIR (this
# folder), VNK_BUILD (the build tree), VNK_SCENARIO.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
finish() {
  echo "VNK: linux61 finished status=$1"
  poweroff -f
}
trap 'finish 99' EXIT
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
release=$(uname -r)
mount -t tmpfs tmpfs /lib/modules
mkdir -p "/lib/modules/$release"
mount --bind "/usr/lib/uml/modules/$release" "/lib/modules/$release"
modprobe tun || echo "VNK: linux61 no tun module"
modprobe ipv6 || echo "VNK: linux61 no ipv6 module"
ip link set lo up
echo "VNK: linux61 kernel=$release ping_group_range=$(tr '\t' , < /proc/sys/net/ipv4/ping_group_range) nofile=$(ulimit -n)"
cd /tmp
PYTHONDONTWRITEBYTECODE=1 VNETKIT_BUILD_DIR="$VNK_BUILD" /usr/bin/python3 "$VNK_DIR/linux61_guest.py" "$VNK_SCENARIO"
status=$?
trap - EXIT
finish "$status"
