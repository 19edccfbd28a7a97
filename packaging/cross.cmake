# CMake toolchain file for a job in anvil's cross mode (docs/recipes.md): the
# recipe's environment names the cross compilers ($CC, $CXX, with --sysroot) and
# the target rootfs ($CROSS_SYSROOT, /sysroot); pkg-config is already pointed
# at the target's multiarch dir (PKG_CONFIG_LIBDIR, PKG_CONFIG_SYSROOT_DIR).
#   cmake -S . -B out -DCMAKE_TOOLCHAIN_FILE=packaging/cross.cmake
set(CMAKE_SYSTEM_NAME Linux)
if("$ENV{CC}" STREQUAL "" OR "$ENV{CROSS_SYSROOT}" STREQUAL "")
  message(FATAL_ERROR "cross.cmake: CC and CROSS_SYSROOT are unset: not inside an anvil cross-mode job")
endif()
separate_arguments(_anvil_cc UNIX_COMMAND "$ENV{CC}")
list(GET _anvil_cc 0 CMAKE_C_COMPILER)
if(NOT "$ENV{CXX}" STREQUAL "")
  separate_arguments(_anvil_cxx UNIX_COMMAND "$ENV{CXX}")
  list(GET _anvil_cxx 0 CMAKE_CXX_COMPILER)
endif()
# aarch64-linux-gnu-gcc -> aarch64; arm-linux-gnueabihf-gcc -> arm
string(REGEX REPLACE "-.*$" "" CMAKE_SYSTEM_PROCESSOR "${CMAKE_C_COMPILER}")
set(CMAKE_SYSROOT "$ENV{CROSS_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
