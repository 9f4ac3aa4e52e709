# shellcheck shell=bash
# Shared by scripts/setup, scripts/test and scripts/check-packaging (sourced,
# not run).
#
#   cmalloc_install_deps
#       Make sure the Debian packages cmalloc needs are installed.  As root,
#       installs the missing ones with apt-get (running 'apt-get update'
#       first); does nothing, quickly, when all are present already.  When
#       not root, or without apt/dpkg, prints what to install and goes on as
#       long as the tools the build needs are there.
#
#   cmalloc_configure_build BUILD_DIR [CMAKE_ARG...]
#       Configure (Release unless BUILD_TYPE says otherwise) and build.
#
#   cmalloc_log MESSAGE...   a progress line on stdout, with the time elapsed
#                            since the outermost script started ([m:ss])
#   cmalloc_die MESSAGE...   an error on stderr, exit 1

# Everything needed to build cmalloc, run its test suite and run programs
# on it.  CMALLOC_EXTRA_PACKAGES (space-separated) adds to the list.
CMALLOC_PACKAGES=(
  build-essential # gcc, make, libc6-dev
  cmake
  pkg-config
  check # unit-test framework used by tests/
  valgrind
  python3
  perl
  git
  file
  time
  # tests/prof: the heap profiles are read by both pprof implementations
  google-perftools # google-pprof
  golang-go        # go tool pprof
  binutils         # addr2line, which symbolizes leak reports and profiles
  graphviz         # dot, for google-pprof --svg
  # tests/programs/compare.sh: cmalloc-run --compare against the peers
  libjemalloc2
  libtcmalloc-minimal4
  libmimalloc2.0
  strace # tests/stress/steady_syscalls.sh
  # tests/fuzz and scripts/fuzz: clang and its libFuzzer, which is not in
  # the clang package but in compiler-rt's
  clang
  libclang-rt-dev
  # scripts/check-packaging: Debian, RPM and CPack packages
  debhelper # dh, debhelper-compat 13 (pulls in dpkg-dev)
  dpkg-dev  # dpkg-buildpackage, dpkg-scanpackages, dpkg-shlibdeps
  lintian
  rpm      # rpmbuild, rpmspec
  rpm2cpio # rpm2archive
)

# Commands without which nothing can be built, checked when the packages
# could not be installed here.
CMALLOC_REQUIRED_COMMANDS=(cc make cmake ctest)

# Scripts run by other scripts (scripts/test runs scripts/check-packaging)
# count from the start of the outermost one.
if [[ -z ${CMALLOC_T0:-} ]]; then
  CMALLOC_T0=$(date +%s)
  export CMALLOC_T0
fi

cmalloc_elapsed() {
  local s=$(($(date +%s) - CMALLOC_T0))
  printf '%d:%02d' $((s / 60)) $((s % 60))
}

cmalloc_log() {
  printf '==> [%s] %s\n' "$(cmalloc_elapsed)" "$*"
}

cmalloc_warn() {
  printf '%s: warning: %s\n' "${0##*/}" "$*" >&2
}

cmalloc_die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# Print the packages (of those given) that dpkg does not list as installed.
cmalloc_missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) || status=""
    [[ $status == ii* ]] || printf '%s\n' "$pkg"
  done
}

cmalloc_check_commands() {
  local cmd missing=()
  for cmd in "${CMALLOC_REQUIRED_COMMANDS[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if ((${#missing[@]} > 0)); then
    cmalloc_die "required commands not found: ${missing[*]}"
  fi
}

cmalloc_install_deps() {
  local -a wanted missing
  local extra
  wanted=("${CMALLOC_PACKAGES[@]}")
  if [[ -n ${CMALLOC_EXTRA_PACKAGES:-} ]]; then
    read -r -a extra <<<"$CMALLOC_EXTRA_PACKAGES"
    wanted+=("${extra[@]}")
  fi

  if ! command -v dpkg-query >/dev/null 2>&1; then
    cmalloc_warn "dpkg not found (not Debian?): not installing packages;" \
      "make sure these, or their equivalents, are installed: ${wanted[*]}"
    cmalloc_check_commands
    return 0
  fi

  mapfile -t missing < <(cmalloc_missing_packages "${wanted[@]}")
  if ((${#missing[@]} == 0)); then
    cmalloc_log "Packages: all ${#wanted[@]} needed packages are installed"
    return 0
  fi

  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    cmalloc_warn "missing packages: ${missing[*]}"
    cmalloc_warn "install them as root with:" \
      "apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    cmalloc_check_commands
    cmalloc_warn "continuing with what is installed; some steps may fail"
    return 0
  fi

  cmalloc_log "Packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q ||
    cmalloc_die "apt-get update failed"
  apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" ||
    cmalloc_die "apt-get install failed for: ${missing[*]}"

  mapfile -t missing < <(cmalloc_missing_packages "${missing[@]}")
  if ((${#missing[@]} > 0)); then
    cmalloc_die "still not installed after apt-get: ${missing[*]}"
  fi
}

cmalloc_configure_build() {
  local build_dir=$1
  shift
  local jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  cmalloc_log "Configuring in $build_dir (${BUILD_TYPE:-Release})"
  cmake -S "$CMALLOC_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@"
  cmalloc_log "Building with $jobs jobs"
  cmake --build "$build_dir" -j "$jobs"
}

# The repository root (this file is scripts/lib/deps.sh) and the build
# directory: BUILD_DIR from the environment, relative to the directory the
# script was started from, else build/ in the repository.
CMALLOC_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
if [[ -n ${BUILD_DIR:-} ]]; then
  case $BUILD_DIR in
    /*) ;;
    *) BUILD_DIR=$PWD/$BUILD_DIR ;;
  esac
else
  BUILD_DIR=$CMALLOC_ROOT/build
fi
