# `cmake --install`: the program, its man page and systemd unit, and for VMM
# authors who embed the device, the device-side libraries (static, PIC) with
# their headers, a CMake package (find_package(vnetkit)) and a pkg-config file.
#
# Embedders include headers by layer, as vnetkit's own code does:
#   #include "net/net_device.hpp"      (from <prefix>/include/vnetkit)
# and link vnetkit::vnetkit (CMake) or `pkg-config --libs vnetkit`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The layers a VMM needs to run the device: memory, the virtio transport,
# the net device, and the backends (loopback, socketpair, the usernet
# gateway). The vhost-user server, netns, attach and sandbox layers belong to
# the vnetkit program and are not installed as libraries.
set(VNETKIT_EMBED_LAYERS base memory packet virtio net backend usernet)

add_library(vnk_embed INTERFACE)
set_target_properties(vnk_embed PROPERTIES EXPORT_NAME vnetkit)
foreach(layer IN LISTS VNETKIT_EMBED_LAYERS)
  set_target_properties(vnk_${layer} PROPERTIES EXPORT_NAME ${layer} OUTPUT_NAME vnetkit_${layer})
  target_link_libraries(vnk_embed INTERFACE vnk_${layer})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/${layer} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vnetkit
          COMPONENT dev FILES_MATCHING PATTERN "*.hpp")
  list(APPEND vnk_embed_targets vnk_${layer})
endforeach()
add_library(vnetkit::vnetkit ALIAS vnk_embed)

install(TARGETS ${vnk_embed_targets} vnk_embed EXPORT vnetkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vnetkit)
# `cmake --install --strip` and the packages (CPACK_STRIP_FILES) strip
# programs; do the same for the archives, which CMake leaves alone: debug
# information is four fifths of their size.
set(strip_archives [[
  if(CMAKE_INSTALL_DO_STRIP)
    file(GLOB archives "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_LIBDIR@/libvnetkit_*.a")
    foreach(a IN LISTS archives)
      execute_process(COMMAND "@CMAKE_STRIP@" --strip-debug "${a}" COMMAND_ERROR_IS_FATAL ANY)
    endforeach()
  endif()
]])
string(CONFIGURE "${strip_archives}" strip_archives @ONLY)
install(CODE "${strip_archives}" COMPONENT dev)
install(EXPORT vnetkitTargets NAMESPACE vnetkit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vnetkit COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/vnetkitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/vnetkitConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vnetkit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/vnetkitConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/vnetkitConfig.cmake ${PROJECT_BINARY_DIR}/vnetkitConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vnetkit COMPONENT dev)

# pkg-config: the libraries are static, so their own dependencies (fmt,
# spdlog) are listed in Requires, not Requires.private.
set(VNETKIT_PC_LIBS "")
foreach(layer IN ITEMS usernet backend net virtio memory packet base)
  string(APPEND VNETKIT_PC_LIBS " -lvnetkit_${layer}")
endforeach()
# The prefix is found from the file's own place, so the tree can be moved
# (cmake --install --prefix, DESTDIR, a package).
file(RELATIVE_PATH VNETKIT_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" VNETKIT_PC_TO_PREFIX "${VNETKIT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/vnetkit.pc.in ${PROJECT_BINARY_DIR}/vnetkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/vnetkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The program and what goes with it.
install(TARGETS vnetkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT program)
install(FILES ${PROJECT_SOURCE_DIR}/dist/vnetkit-serve@.service
        DESTINATION lib/systemd/system COMPONENT program)
install(FILES ${PROJECT_SOURCE_DIR}/dist/serve.toml.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT program)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT program
        FILES_MATCHING PATTERN "*.md")
