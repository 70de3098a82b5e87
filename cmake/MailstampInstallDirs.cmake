# Installation directories, as full paths for the files that name them.
#
# GNUInstallDirs gives the layout: with CMAKE_INSTALL_PREFIX=/usr the system
# configuration directory is /etc and the state directory /var (and /usr/local
# keeps /usr/local/etc, /usr/local/var). Every installed file that names a path
# is a template (*.in) filled in from the variables below at configure time,
# and so is the one source that holds the programs' compiled-in paths
# (libmail/base/paths.cpp.in). The prefix is therefore chosen when configuring;
# `cmake --install --prefix` moves files without rewriting what they say.
include(GNUInstallDirs)

set(MAILSTAMP_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
set(MAILSTAMP_SBINDIR "${CMAKE_INSTALL_FULL_SBINDIR}")
set(MAILSTAMP_LIBEXECDIR "${CMAKE_INSTALL_FULL_LIBEXECDIR}/mailstamp")
set(MAILSTAMP_CONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/mailstamp")
set(MAILSTAMP_CONFIG "${MAILSTAMP_CONFDIR}/mailstamp.conf")
set(MAILSTAMP_LOCALSTATEDIR "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}")
set(MAILSTAMP_STATEDIR "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/mailstamp")
set(MAILSTAMP_PKGDATADIR "${CMAKE_INSTALL_FULL_DATADIR}/mailstamp")
set(MAILSTAMP_DOCDIR "${CMAKE_INSTALL_FULL_DOCDIR}")

# systemd looks for units of packages under PREFIX/lib/systemd (not LIBDIR,
# which is lib/x86_64-linux-gnu on Debian).
set(MAILSTAMP_SYSTEMD_SYSTEM_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where system units install (relative to the prefix, or absolute)")
set(MAILSTAMP_SYSTEMD_USER_UNIT_DIR "lib/systemd/user" CACHE STRING
    "Where user units install (relative to the prefix, or absolute)")
foreach(kind SYSTEM USER)
  if(IS_ABSOLUTE "${MAILSTAMP_SYSTEMD_${kind}_UNIT_DIR}")
    set(MAILSTAMP_${kind}_UNITDIR "${MAILSTAMP_SYSTEMD_${kind}_UNIT_DIR}")
  else()
    set(MAILSTAMP_${kind}_UNITDIR "${CMAKE_INSTALL_PREFIX}/${MAILSTAMP_SYSTEMD_${kind}_UNIT_DIR}")
  endif()
endforeach()

# mailstamp_configure_tree(SRC_DIR DEST_DIR OUT_VAR): each SRC_DIR/**/*.in
# becomes DEST_DIR/** without the .in; OUT_VAR lists the generated files.
function(mailstamp_configure_tree src dest out)
  file(GLOB_RECURSE templates CONFIGURE_DEPENDS RELATIVE "${src}" "${src}/*.in")
  set(generated)
  foreach(rel IN LISTS templates)
    string(REGEX REPLACE "\\.in$" "" rel_out "${rel}")
    configure_file("${src}/${rel}" "${dest}/${rel_out}" @ONLY)
    list(APPEND generated "${dest}/${rel_out}")
  endforeach()
  set(${out} ${generated} PARENT_SCOPE)
endfunction()
