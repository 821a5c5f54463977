# Man pages, made by help2man from the built program's --help plus the
# hand-written sections in man/*.h2m (scripts/make-man), at every build that
# changes either: they cannot drift from --help. Without help2man (the demo
# profile does not install it) the build says so and installs none.
find_program(HELP2MAN help2man)
set(VNETKIT_MAN_PAGES vnetkit vnetkit-serve vnetkit-netns vnetkit-demo vnetkit-doctor vnetkit-stats)
if(HELP2MAN)
  set(man_outputs "")
  set(man_sources "")
  foreach(page IN LISTS VNETKIT_MAN_PAGES)
    list(APPEND man_outputs ${PROJECT_BINARY_DIR}/man/${page}.1)
    list(APPEND man_sources ${PROJECT_SOURCE_DIR}/man/${page}.h2m)
  endforeach()
  add_custom_command(OUTPUT ${man_outputs}
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/make-man $<TARGET_FILE:vnetkit> ${PROJECT_BINARY_DIR}/man
    DEPENDS vnetkit ${man_sources} ${PROJECT_SOURCE_DIR}/scripts/make-man
    COMMENT "Man pages from --help (help2man)")
  add_custom_target(man ALL DEPENDS ${man_outputs})
  install(FILES ${man_outputs} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT program)
else()
  message(STATUS "help2man not found: no man pages (scripts/setup --profile test installs it)")
endif()
