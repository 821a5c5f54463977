# `cpack -G DEB` (after a build): two Debian packages,
#   vnetkit      the program, its man pages, the systemd unit and the docs;
#   vnetkit-dev  the device libraries, headers, CMake package and pkg-config
#                file, for VMM authors.
# dpkg-shlibdeps computes the program's library dependencies (libfmt9,
# libspdlog1.10, libseccomp2, libstdc++6, libc6) from the binary itself.
set(CPACK_PACKAGE_NAME vnetkit)
set(CPACK_PACKAGE_VENDOR "vnetkit")
set(CPACK_PACKAGE_CONTACT "vnetkit developers <vnetkit@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL program dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_PROGRAM_PACKAGE_NAME vnetkit)
set(CPACK_DEBIAN_PROGRAM_PACKAGE_SECTION net)
# iproute2: `vnetkit netns` configures nothing with it, but its users do;
# user-mode-linux runs the bundled demo guest; QEMU attaches over vhost-user.
set(CPACK_DEBIAN_PROGRAM_PACKAGE_RECOMMENDS "iproute2")
set(CPACK_DEBIAN_PROGRAM_PACKAGE_SUGGESTS "user-mode-linux, qemu-system-x86")
# The first line of each description is the package's summary.
set(CPACK_DEBIAN_PROGRAM_DESCRIPTION
    "hardened virtio-net device and user-mode networking for VMs and namespaces
vnetkit serves a user-mode NAT network (DHCP, DNS, ICMP, UDP, TCP through
the host's sockets, no root) to virtual machines over vhost-user, QEMU's
stream and datagram sockets, or a TAP device in a network namespace.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME vnetkit-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libfmt-dev, libspdlog-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "vnetkit's virtio-net device model, to embed in a VMM
Static libraries and headers of the virtio-net device (virtio 1.2,
virtio-MMIO transport) and its backends, with a CMake package
(find_package(vnetkit)) and a pkg-config file.")

include(CPack)
