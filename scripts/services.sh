# Sourced by scripts/test: start the local services the tests use when they are
# installed but down. A service whose UNITY_TEST_*_URL points elsewhere is left
# alone; one that is not installed is left to the tests, which skip with a reason
# (and fail under CI).

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
    for _ in $(seq 1 50); do
        port_open "$1" && return 0
        sleep 0.2
    done
    echo "  $2 did not open port $1" >&2
    return 0
}

# ensure_service NAME URL_VARIABLE PORT INSTALLED_COMMAND START_COMMAND...
ensure_service() {
    local name=$1 url_var=$2 port=$3 installed=$4
    shift 4
    if [ -n "${!url_var:-}" ] || port_open "$port"; then
        return 0
    fi
    if ! command -v "$installed" >/dev/null; then
        return 0
    fi
    echo "Starting the local $name (port $port)" >&2
    "$@" >/dev/null 2>&1 || true
    wait_port "$port" "$name"
}

start_postgres() {
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
}

start_mariadb() {
    start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)"
}

if [ -d /etc/postgresql ]; then
    ensure_service PostgreSQL UNITY_TEST_POSTGRES_URL 5432 pg_ctlcluster start_postgres
fi
if command -v mariadbd >/dev/null; then
    ensure_service MariaDB UNITY_TEST_MYSQL_URL 3306 start-stop-daemon start_mariadb
fi
ensure_service Redis UNITY_TEST_REDIS_URL 6379 redis-server \
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
if [ -f /etc/mosquitto/mosquitto.conf ]; then
    ensure_service Mosquitto UNITY_TEST_MQTT_URL 1883 mosquitto \
        mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
