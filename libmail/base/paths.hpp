#pragma once
// Where an installation keeps its files, fixed when the build is configured
// (CMAKE_INSTALL_PREFIX and GNUInstallDirs). The values live in one generated
// source, paths.cpp from paths.cpp.in in the build tree, so that a new prefix
// recompiles that one object and nothing else.

namespace mail::paths {

/// The system configuration file: SYSCONFDIR/mailstamp/mailstamp.conf
/// (/etc/mailstamp/mailstamp.conf for the prefix /usr).
extern const char* const config_file;
/// Read-only data: DATADIR/mailstamp (challenge.txt, inetd and cron examples).
extern const char* const pkgdata_dir;

} // namespace mail::paths
