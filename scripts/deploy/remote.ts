/**
 * The bash scripts deploy.ts runs on a host (through Remote.run). Each starts with PRELUDE, which
 * takes the install folder and the supervisor mode as $1 and $2: `auto` becomes `systemd` when
 * systemd runs the host (/run/systemd/system exists), else `plain` (the bundle's ./supervise).
 * Non-root users reach systemd through `sudo -n`.
 */

const PRELUDE = `set -uo pipefail
D=$1; MODE=$2; shift 2
if [ "$MODE" = auto ]; then if [ -d /run/systemd/system ]; then MODE=systemd; else MODE=plain; fi; fi
SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
DAEMONS="memberd hydfsd rainstormd"
fail() { echo "$*" >&2; exit 1; }
`;

const script = (body: string) => PRELUDE + body;

/** Make the install folder; print the mode. Args: [bundle file name]. */
export const PREPARE = script(`
mkdir -p "$D" || fail "cannot create $D"
command -v tar >/dev/null || fail "tar is not installed"
case "\${1:-}" in *.tar.xz) command -v xz >/dev/null || fail "xz is not installed on $(hostname): install it (apt-get install xz-utils) or make a gzip bundle (npm run bundle -- --compress gzip)";; esac
echo "mode=$MODE"
`);

/**
 * Unpack an uploaded tarball into the install folder. Each top-level entry is swapped in by
 * rename (running daemons keep their open files; the new binaries take effect at the next
 * start); the host's own config.json and var/ are kept. Args: <uploaded tarball>.
 */
export const UNPACK = script(`
TB=$1
[ -f "$TB" ] || fail "$TB: not found"
U=$(mktemp -d "$D/.unpack.XXXXXX") || fail "cannot make a folder in $D"
trap 'rm -rf "$U" "$TB" "$D/.old"' EXIT
tar -xf "$TB" -C "$U" --strip-components=1 --no-same-owner || fail "tar -xf failed"
[ -x "$U/bin/rainstorm" ] || fail "$TB: not a RainStorm bundle (no bin/rainstorm)"
rm -rf "$D/.old" && mkdir "$D/.old" || fail "cannot make $D/.old"
for e in $(ls -A "$U"); do
  if [ "$e" = config.json ] && [ -e "$D/config.json" ]; then continue; fi
  if [ -e "$D/$e" ] || [ -L "$D/$e" ]; then mv "$D/$e" "$D/.old/$e" || fail "cannot move $D/$e"; fi
  mv "$U/$e" "$D/$e" || fail "cannot move $e into $D"
done
echo "$(head -n 1 "$D/VERSION") ($(sed -n 2p "$D/VERSION"))"
`);

/** Write config.json (mode 0600: it may hold the secret). Args: <content>. */
export const CONFIGURE = script(`
mkdir -p "$D" || fail "cannot create $D"
umask 077
printf '%s' "$1" >"$D/.config.json.tmp" && mv -f "$D/.config.json.tmp" "$D/config.json" || fail "cannot write $D/config.json"
echo "config.json written ($(wc -l <"$D/config.json") lines)"
`);

/** systemd: install the bundle's units (with /opt/rainstorm replaced by the folder) and enable them. */
export const INSTALL = script(`
[ -d "$D/systemd" ] && [ -x "$D/supervise" ] || fail "$D holds no bundle: push it first"
if [ "$MODE" = systemd ]; then
  for f in "$D"/systemd/*; do
    sed "s#/opt/rainstorm#$D#g" "$f" | $SUDO tee "/etc/systemd/system/$(basename "$f")" >/dev/null || fail "cannot write /etc/systemd/system/$(basename "$f")"
  done
  $SUDO systemctl daemon-reload || fail "systemctl daemon-reload failed"
  $SUDO systemctl enable --quiet rainstorm.target rainstorm-memberd.service rainstorm-hydfsd.service rainstorm-rainstormd.service || fail "systemctl enable failed"
  echo "systemd: rainstorm-memberd, rainstorm-hydfsd, rainstorm-rainstormd installed and enabled (rainstorm.target)"
else
  echo "no systemd: the plain supervisor $D/supervise runs the daemons (nothing to install)"
fi
`);

/** Start daemons (default all; memberd first). Args: [daemon...]. */
export const START = script(`
LIST=\${*:-$DAEMONS}
[ -x "$D/bin/rainstorm" ] || fail "$D holds no bundle: push it first"
[ -f "$D/config.json" ] || fail "$D/config.json missing: configure first"
if [ "$MODE" = systemd ]; then
  for d in $DAEMONS; do
    case " $LIST " in *" $d "*) $SUDO systemctl start "rainstorm-$d.service" || fail "systemctl start rainstorm-$d failed"; echo "$d: $(systemctl is-active "rainstorm-$d.service") (pid $(systemctl show -p MainPID --value "rainstorm-$d.service"))";; esac
  done
else
  "$D/supervise" start $LIST
fi
`);

/** Stop daemons (default all) with SIGTERM, memberd first: the node leaves the group. Args: [daemon...]. */
export const STOP = script(`
LIST=\${*:-$DAEMONS}
if [ "$MODE" = systemd ]; then
  for d in memberd rainstormd hydfsd; do
    case " $LIST " in *" $d "*) $SUDO systemctl stop "rainstorm-$d.service" && echo "$d: stopped";; esac
  done
else
  [ -x "$D/supervise" ] || { echo "nothing installed in $D"; exit 0; }
  "$D/supervise" stop $LIST
fi
`);

/** One line per daemon: name, state, pid, since; then the bundle version. */
export const STATUS = script(`
echo "mode $MODE"
if [ "$MODE" = systemd ]; then
  for d in $DAEMONS; do
    state=$(systemctl is-active "rainstorm-$d.service" 2>/dev/null)
    echo "$d $state pid $(systemctl show -p MainPID --value "rainstorm-$d.service" 2>/dev/null) since $(systemctl show -p ActiveEnterTimestamp --value "rainstorm-$d.service" 2>/dev/null)"
  done
elif [ -x "$D/supervise" ]; then
  "$D/supervise" status
else
  for d in $DAEMONS; do echo "$d not-installed"; done
fi
echo "version $(head -n 1 "$D/VERSION" 2>/dev/null || echo none)"
`);

/** The daemons' logs. Args: <lines> <follow 0|1> [daemon...]. */
export const LOGS = script(`
N=$1; F=$2; shift 2
LIST=\${*:-$DAEMONS}
if [ "$MODE" = systemd ]; then
  units=""; for d in $LIST; do units="$units -u rainstorm-$d.service"; done
  if [ "$F" = 1 ]; then exec $SUDO journalctl $units -n "$N" --no-pager -o short-iso -f; else exec $SUDO journalctl $units -n "$N" --no-pager -o short-iso; fi
else
  [ -x "$D/supervise" ] || fail "nothing installed in $D"
  if [ "$F" = 1 ]; then exec "$D/supervise" logs $LIST -n "$N" -f; else exec "$D/supervise" logs $LIST -n "$N"; fi
fi
`);

/** Run a command in the install folder. Args: <command> [args...]. */
export const RUN = script(`
cd "$D" || fail "no folder $D"
"$@"
`);

/**
 * Ask the cluster through this host's ctl (its config has the secret and ports): for each node
 * address given, the answers of ctl's <commands> (comma-separated), all nodes at once. Output: a
 * line "@@ <node> <command> <exit code>" then the command's stdout (its stderr when it failed).
 * Args: <commands> <node address...>.
 */
export const PROBE = script(`
cd "$D" || fail "no folder $D"
[ -x bin/ctl ] || fail "$D/bin/ctl missing"
CMDS=$1; shift
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
probe() {
  local h=$1 c code
  for c in \${CMDS//,/ }; do
    bin/ctl "$c" --node "$h" --json --config config.json --timeout 2000 </dev/null >"$T/$h.$c.out" 2>"$T/$h.$c.err"
    code=$?
    echo "@@ $h $c $code"
    if [ $code = 0 ]; then cat "$T/$h.$c.out"; else cat "$T/$h.$c.err" "$T/$h.$c.out" | head -c 2000; fi
    echo
  done >"$T/$h"
}
for h in "$@"; do probe "$h" & done
wait
for h in "$@"; do cat "$T/$h"; done
`);
