#!/usr/bin/env bash
# Install the Berth daemon (and optionally the control plane) as systemd services.
#
#   scripts/install-daemon.sh --user                 # systemctl --user unit for you (default when not root)
#   scripts/install-daemon.sh --system alice         # system unit berth-daemon@alice (run as root)
#   scripts/install-daemon.sh --controlplane         # system unit berth-controlplane (run as root)
#   ... --dry-run                                    # print what would be done, change nothing
#   ... --root DIR                                   # write files under DIR, run no systemctl (packaging, tests)
#   ... --bin DIR                                    # where berth-daemon / berth-controlplane live
#   ... --force                                      # overwrite existing config files
#   ... --enroll URL TOKEN [--ca FILE]               # dial out to a control plane (behind NAT)
#
# Writes a default config (kept if present), installs the unit with the real path of the
# console scripts substituted, then `systemctl daemon-reload` and `enable --now`. With --enroll
# the daemon first trades the enrollment token (POST /api/v1/machines {"dial_out": true}) for its
# credential and dials out to URL's tunnel; it needs no listener but its local socket.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
units="$repo/systemd"

mode=""
sys_user=""
controlplane=0
dry_run=0
root=""
bin_dir=""
force=0
enroll_url=""
enroll_token=""
ca_file=""

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install-daemon: $*" >&2; exit 2; }
has_value() { [ $# -ge 2 ] && [[ "$2" != -* ]]; }  # has_value "$@": the option at $1 has a value

while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --system) mode=system; has_value "$@" || die "--system needs a user name"; sys_user="$2"; shift ;;
    --controlplane) controlplane=1 ;;
    --dry-run) dry_run=1 ;;
    --root) has_value "$@" || die "--root needs a directory"; root="$2"; shift ;;
    --bin) has_value "$@" || die "--bin needs a directory"; bin_dir="$2"; shift ;;
    --force) force=1 ;;
    --enroll)
      { has_value "$@" && [ $# -ge 3 ] && [[ "$3" != -* ]]; } || die "--enroll needs a URL and a TOKEN"
      enroll_url="$2"; enroll_token="$3"; shift 2 ;;
    --ca) has_value "$@" || die "--ca needs a PEM file"; ca_file="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

if [ -z "$mode" ] && [ "$controlplane" -eq 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then die "as root, say --system USER or --user or --controlplane"; fi
  mode=user
fi
if [ -n "$enroll_url" ]; then
  [ -n "$mode" ] || die "--enroll: say which daemon (--user or --system USER)"
  [[ "$enroll_url" =~ ^https?://[^[:space:]]+$ ]] || die "--enroll: not an http(s) URL: '$enroll_url'"
fi
if [ -n "$ca_file" ]; then
  [ -n "$enroll_url" ] || die "--ca goes with --enroll"
  [ -r "$ca_file" ] || die "--ca: cannot read $ca_file"
  ca_file="$(cd "$(dirname "$ca_file")" && pwd)/$(basename "$ca_file")"
fi
if [ "$mode" = system ]; then
  [[ "$sys_user" =~ ^[a-z_][a-z0-9_.-]{0,31}$ ]] || die "--system: not a valid user name: '$sys_user'"
  if [ -z "$root" ] && ! getent passwd "$sys_user" >/dev/null; then die "--system: no such user: $sys_user"; fi
fi

# Where the console scripts are: --bin, else the repo's .venv (make install), else python3's
# scripts directory, else wherever berth-daemon is on PATH.
if [ -z "$bin_dir" ]; then
  if [ -x "$repo/.venv/bin/berth-daemon" ]; then bin_dir="$repo/.venv/bin"
  else
    bin_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
    if [ ! -x "$bin_dir/berth-daemon" ] && command -v berth-daemon >/dev/null 2>&1; then
      bin_dir="$(dirname "$(command -v berth-daemon)")"
    fi
  fi
fi
bin_dir="$(cd "$bin_dir" 2>/dev/null && pwd)" || die "--bin: no such directory"
for exe in berth-daemon berth-controlplane; do
  [ -x "$bin_dir/$exe" ] || die "$bin_dir/$exe not found: run 'make install' (or pip install '.[daemon]') first, or pass --bin"
done

run() {  # run a command, or print it under --dry-run
  if [ "$dry_run" -eq 1 ]; then printf 'would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

write_file() {  # write_file PATH MODE [keep]  (content on stdin); keep = leave an existing file alone
  local path="$1" perm="$2" keep="${3:-}" content
  content="$(cat)"
  if [ -n "$keep" ] && [ -e "$path" ] && [ "$force" -eq 0 ]; then
    echo "keeping existing $path (--force to overwrite)"
    return
  fi
  if [ "$dry_run" -eq 1 ]; then
    echo "would write $path (mode $perm):"
    printf '%s\n' "$content" | sed 's/^/    /'
    return
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path"
  chmod "$perm" "$path"
  echo "wrote $path"
}

render_unit() {  # render_unit SRC: the unit with the real script paths
  sed -e "s#/usr/local/bin/berth-daemon#$bin_dir/berth-daemon#g" \
      -e "s#/usr/local/bin/berth-controlplane#$bin_dir/berth-controlplane#g" "$1"
}

providers_toml() {  # absolute agent paths: services do not see the login shell's PATH
  local name exe path
  for name in claude_code codex; do
    exe=claude; [ "$name" = codex ] && exe=codex
    if path="$(command -v "$exe" 2>/dev/null)"; then
      printf '\n[providers.%s]\nbinary = "%s"\n' "$name" "$path"
    else
      printf '\n# [providers.%s]  not found on PATH; install with: npm install -g %s\n' "$name" \
        "$([ "$exe" = claude ] && echo @anthropic-ai/claude-code || echo @openai/codex)"
    fi
  done
}

enroll_daemon() {  # enroll_daemon CONFIG [OWNER]: trade the enrollment token, write [dial_out] into CONFIG
  local config="$1" owner="${2:-}" argv
  argv=("$bin_dir/berth-daemon" enroll --url "$enroll_url" --config "$config")
  if [ -n "$ca_file" ]; then argv+=(--ca "$ca_file"); fi
  if [ "$dry_run" -eq 1 ]; then
    printf 'would run:'; printf ' %q' "${argv[@]}"; printf '   (the token in $BERTH_ENROLLMENT_TOKEN)\n'
    return
  fi
  # The token goes through the environment: argv is readable by every user's ps.
  BERTH_ENROLLMENT_TOKEN="$enroll_token" "${argv[@]}" || die "--enroll: enrolling with $enroll_url failed (see above)"
  if [ -n "$owner" ] && [ -z "$root" ]; then  # the daemon runs as OWNER and reads these
    chown "$owner" "$config" "${config%.toml}.credential"
  fi
}

enrolled_steps() {  # enrolled_steps AGENTS_ENV USER
  cat <<EOF

This machine is enrolled: its daemon dials out to $enroll_url (no inbound port is opened).
  Check it there:  berth machine list   (online: yes)
  API keys: the agents run as $2 and use the CLIs' own login (run claude once; codex login),
     or the keys in $1 (ANTHROPIC_API_KEY=..., OPENAI_API_KEY=...; mode 0600).
EOF
}

next_steps() {  # next_steps SOCKET CONFIG AGENTS_ENV USER
  local host
  host="$(hostname)"
  if [ -n "$enroll_url" ]; then enrolled_steps "$3" "$4"; return; fi
  cat <<EOF

Next steps:
  1. Register this machine with a control plane.
     When the control plane runs on this machine too (it reaches the socket):
       berth machine add $host unix:$1
     For a control plane elsewhere: add a TCP listener to $2
       ([listen] tcp = "0.0.0.0:7443", tls_cert, tls_key, token_file), restart the daemon, then there:
       berth machine add $host $host:7443 --tls-ca ca.pem --token-file daemon.token
  2. API keys: the agents run as $4 and use the CLIs' own login (run claude once; codex login),
     or the keys in $3 (ANTHROPIC_API_KEY=..., OPENAI_API_KEY=...; mode 0600): the unit loads
     that file into the daemon's environment, and the daemon hands it to the agents it starts.
EOF
}

systemctl_cmd() {  # systemctl_cmd [--user] ARGS...: skipped under --root
  if [ -n "$root" ]; then echo "skipping: systemctl $* (--root)"; return; fi
  run systemctl "$@"
}

if [ "$mode" = user ]; then
  config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
  runtime_dir="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
  write_file "$root$config_home/berth/daemon.toml" 0600 keep <<EOF
# Berth daemon (systemctl --user unit berth-daemon). Keys: see daemon/config.py.
# state_dir defaults to \$STATE_DIRECTORY (~/.local/state/berth) under systemd.
[daemon]
max_sessions = 16

[listen]
unix_socket = "$runtime_dir/berth/daemon.sock"
$(providers_toml)
EOF
  if [ -n "$enroll_url" ]; then enroll_daemon "$root$config_home/berth/daemon.toml"; fi
  write_file "$root$config_home/systemd/user/berth-daemon.service" 0644 <<EOF
$(render_unit "$units/user/berth-daemon.service")
EOF
  systemctl_cmd --user daemon-reload
  systemctl_cmd --user enable --now berth-daemon.service
  echo "daemon socket: $runtime_dir/berth/daemon.sock"
  echo "to keep it running while you are logged out: loginctl enable-linger $(id -un)"
  next_steps "$runtime_dir/berth/daemon.sock" "$config_home/berth/daemon.toml" "$config_home/berth/agents.env" "$(id -un)"
fi

if [ "$mode" = system ]; then
  write_file "$root/etc/berth/daemon-$sys_user.toml" 0644 keep <<EOF
# Berth daemon for $sys_user (system unit berth-daemon@$sys_user). Keys: see daemon/config.py.
# state_dir defaults to \$STATE_DIRECTORY (/var/lib/berth/$sys_user) under systemd.
[daemon]
max_sessions = 16

[listen]
unix_socket = "/run/berth/$sys_user/daemon.sock"
unix_socket_mode = 0o660
$(providers_toml)
EOF
  if [ -n "$enroll_url" ]; then enroll_daemon "$root/etc/berth/daemon-$sys_user.toml" "$sys_user"; fi
  write_file "$root/etc/systemd/system/berth-daemon@.service" 0644 <<EOF
$(render_unit "$units/berth-daemon@.service")
EOF
  systemctl_cmd daemon-reload
  systemctl_cmd enable --now "berth-daemon@$sys_user.service"
  echo "daemon socket: /run/berth/$sys_user/daemon.sock"
  next_steps "/run/berth/$sys_user/daemon.sock" "/etc/berth/daemon-$sys_user.toml" "/etc/berth/agents-$sys_user.env" "$sys_user"
fi

if [ "$controlplane" -eq 1 ]; then
  if [ -z "$root" ] && ! getent passwd berth >/dev/null; then
    run useradd --system --user-group --no-create-home --home-dir /var/lib/berth-controlplane \
      --shell /usr/sbin/nologin berth
  fi
  write_file "$root/etc/berth/controlplane.toml" 0640 keep <<EOF
# Berth control plane (system unit berth-controlplane). Keys: see controlplane/config.py.
[server]
host = "127.0.0.1"
port = 8080
state_dir = "/var/lib/berth-controlplane"   # holds controlplane.sqlite3
# database_url = "postgresql+asyncpg://berth@/berth"   # PostgreSQL instead of SQLite
EOF
  if [ -z "$root" ]; then run chgrp berth /etc/berth/controlplane.toml; fi
  write_file "$root/etc/systemd/system/berth-controlplane.service" 0644 <<EOF
$(render_unit "$units/berth-controlplane.service")
EOF
  systemctl_cmd daemon-reload
  systemctl_cmd enable --now berth-controlplane.service
  echo "first admin token: runuser -u berth -- $bin_dir/berth-controlplane --config /etc/berth/controlplane.toml create-token --owner admin --admin"
fi
