#!/usr/bin/env bash
# Apache Kafka 4.4.0 (KRaft, no ZooKeeper) from Maven Central, for the tests, the fault suite, the benchmark and the
# demo. The jars are fetched once with Maven (scripts/kafka/pom.xml) into $KC_KAFKA_CACHE
# (default ~/.cache/kafka-component/kafka-4.4.0); every broker runs from there.
#
#   eval "$(scripts/kafka.sh start)"     one combined broker+controller on free loopback ports:
#       KC_KAFKA_BROKERS        PLAINTEXT            127.0.0.1:port
#       KC_KAFKA_SCRAM_BROKERS  SASL_PLAINTEXT       127.0.0.1:port  scram512/scram512-pass (SCRAM-SHA-512),
#                                                                    scram256/scram256-pass (SCRAM-SHA-256),
#                                                                    plain/plain-pass (PLAIN)
#       KC_KAFKA_SSL_BROKERS    SSL                  localhost:port  server certificate for DNS:localhost only
#       KC_KAFKA_MTLS_BROKERS   SSL, client certificate required     localhost:port
#       KC_KAFKA_SASL_SSL_BROKERS SASL_SSL (the SASL users above)    localhost:port
#       KC_KAFKA_CA             PEM of the test CA that signed the server (and the client) certificate
#       KC_KAFKA_CLIENT_CERT, KC_KAFKA_CLIENT_KEY  PEM files of a client certificate the mTLS listener accepts
#       KC_KAFKA_OAUTH_BROKERS  SASL_PLAINTEXT OAUTHBEARER  127.0.0.1:port  the broker validates RS256 JWTs against the
#                               JWKS of the stand-in identity provider below (audience kc-kafka, issuer its base URL,
#                               clock skew 2 s, sessions re-authenticated within 60 s: connections.max.reauth.ms)
#       KC_OAUTH_TOKEN_URL      http://127.0.0.1:port/token of scripts/kafka/idp.py (its JWKS: .../jwks), started
#                               with the broker; client_credentials grant, Basic or form client authentication
#       KC_OAUTH_CLIENT_ID=kc-client        tokens valid 300 s
#       KC_OAUTH_SHORT_CLIENT_ID=kc-short   tokens valid 15 s (refresh and re-authentication tests)
#       KC_OAUTH_NOACCESS_CLIENT_ID=kc-noaccess  answers 200 with no access_token
#       KC_OAUTH_CLIENT_SECRET  the secret of all three clients
#       KC_OAUTH_AUDIENCE=kc-kafka          the audience the broker expects (the IdP's default `aud`)
#       KC_KAFKA_PID, KC_KAFKA_DIR, KC_KAFKA_LIBS (the classpath folder, for the Java client)
#   scripts/kafka.sh stop                stops what the exported variables name (single broker and/or cluster) and
#       removes its folder, unless KC_KAFKA_KEEP_DIR is set (the tests set it when they fail)
#   eval "$(scripts/kafka.sh cluster 3)" three brokers (each broker+controller, own ports and data dirs) forming one
#       cluster with replication factor 3 and min.insync.replicas=2 by default:
#       KC_KAFKA_CLUSTER (comma-separated host:port), KC_KAFKA_CLUSTER_PIDS (comma-separated), KC_KAFKA_CLUSTER_DIR
#   scripts/kafka.sh fetch               only fetches the jars (CI warms its cache with it)
#   scripts/kafka.sh stop-all            stops every broker made under $KC_KAFKA_ROOT (default /tmp)
#
# Every broker's folder holds `start.sh` (restarts it in the foreground on the same ports and data; the fault suite
# uses it after a SIGKILL), `pid`, `server.properties` and its log, `server.log`. The single broker's folder also holds
# the identity provider's `idp.pid`, `idp.log` and key; start.sh restarts only the broker, the IdP keeps running.
# Extra broker properties: KC_KAFKA_PROPS="key=value key=value" (appended to every broker's server.properties).
# Heap: KC_KAFKA_HEAP (default 384m, at most 512m per broker).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KAFKA_VERSION=4.4.0
CACHE="${KC_KAFKA_CACHE:-$HOME/.cache/kafka-component/kafka-$KAFKA_VERSION}"
LIBS="$CACHE/libs"
HEAP="${KC_KAFKA_HEAP:-384m}"
# Where broker folders are made. scripts/test.sh points it at a folder of its run, so that `stop-all` there also
# stops brokers that a killed test process left behind.
ROOT="${KC_KAFKA_ROOT:-/tmp}"
mkdir -p "$ROOT"

log() { printf '[kafka] %s\n' "$*" >&2; }
# N distinct free ports below the kernel's ephemeral range, so that no outgoing connection can take one between
# this check and the broker's bind (a port the kernel hands out as a client port could). All N are held while
# choosing so they differ from each other.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
while len(held) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(10000, max(10001, low))))
    except OSError:
        s.close(); continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

fetch() {
  [ -f "$CACHE/.complete" ] && return 0
  command -v mvn >/dev/null || { log "Maven (mvn) is missing: apt-get install -y maven"; exit 1; }
  command -v java >/dev/null || { log "Java 17 is missing: apt-get install -y openjdk-17-jre-headless"; exit 1; }
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $CACHE (once)"
  local tmp="$CACHE.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp/libs" >&2
  mkdir -p "$CACHE"; rm -rf "$LIBS"; mv "$tmp/libs" "$LIBS"; rm -rf "$tmp"
  touch "$CACHE/.complete"
}

# Test PKI in $1: a CA, a server certificate for DNS:localhost (PKCS12 keystore) and a client certificate.
make_pki() {
  local d="$1"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 7 -subj "/CN=kc test ca" 2>/dev/null
    printf 'subjectAltName=DNS:localhost\n' >server.ext
    for name in server client; do
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
      ext=(); [ "$name" = server ] && ext=(-extfile server.ext)
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days 7 \
        "${ext[@]}" 2>/dev/null
    done
    openssl pkcs12 -export -in server.pem -inkey server.key -out server.p12 -passout pass:kc-test-pass
  )
}

log4j_config() {
  cat >"$1/log4j2.properties" <<EOF
appender.file.type = File
appender.file.name = file
appender.file.fileName = $1/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = kafka.controller
logger.controller.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

# Writes $dir/start.sh, which runs the broker in the foreground (exec, so its pid is the JVM's). $2: extra JVM
# options (words without spaces or quotes), kept in start.sh so that a restart has them too.
write_start() {
  local dir="$1" jvm_opts="${2:-}"
  cat >"$dir/start.sh" <<EOF
#!/usr/bin/env bash
exec java -Xms64m -Xmx$HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \\
  -Dlog4j2.configurationFile=$dir/log4j2.properties ${jvm_opts:+$jvm_opts }\\
  -cp '$LIBS/*' kafka.Kafka $dir/server.properties >>$dir/stdout.log 2>&1
EOF
  chmod +x "$dir/start.sh"
}

# A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes). Like Kafka's own Uuid.randomUuid, never
# one that starts with '-': the storage tool's argument parser reads "--cluster-id -Xy..." as a missing value and a
# new option (1 start in 64 failed that way).
new_cluster_id() {
  python3 -c 'import base64,uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break'
}

format() { # dir cluster-id [scram users...]
  local dir="$1" id="$2"; shift 2
  java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$LIBS/*" \
    kafka.tools.StorageTool format --cluster-id "$id" --config "$dir/server.properties" --ignore-formatted "$@" \
    >"$dir/format.log" 2>&1 || { log "formatting $dir failed:"; cat "$dir/format.log" >&2; exit 1; }
}

launch() { # dir → pid
  local dir="$1"
  setsid "$dir/start.sh" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/pid"
  cat "$dir/pid"
}

# Ready when the broker logged that it started and its first client port accepts.
wait_ready() { # dir port pid
  local dir="$1" port="$2" pid="$3" i
  for i in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -qs "Address already in use" "$dir/server.log" "$dir/stdout.log"; then
        log "broker in $dir: a port was taken meanwhile; retrying with other ports"; return 2
      fi
      log "broker in $dir exited during startup:"; tail -30 "$dir/server.log" "$dir/stdout.log" >&2 2>/dev/null; exit 1
    fi
    if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    then return 0; fi
    sleep 0.1
  done
  log "broker in $dir not ready after 60 s (log: $dir/server.log)"; exit 1
}

common_props() { # dir node-id
  cat <<EOF
process.roles=broker,controller
node.id=$2
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$1/data
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=4
# A segment that retention deleted stays on disk (renamed .deleted) for 60 s: with 1 s, the background flush of a
# just-rolled segment (the retention test rolls one every 300 ms) could find its file closed, and the broker took its
# only log directory offline and stopped (ClosedChannelException). The log start offset moves at once either way.
log.segment.delete.delay.ms=60000
log.retention.check.interval.ms=1000
log.initial.task.delay.ms=1000
share.coordinator.state.topic.num.partitions=1
EOF
}

extra_props() { local kv; for kv in ${KC_KAFKA_PROPS:-}; do echo "$kv"; done; }

# The stand-in OAuth identity provider (scripts/kafka/idp.py) for the OAUTHBEARER listener: the one secret of its
# clients (see the header of idp.py).
OAUTH_SECRET=kc-client-secret-7f3a9c2e5b

start_idp() { # dir port → pid (the IdP detaches like the broker and survives this script)
  local dir="$1" port="$2"
  setsid python3 "$here/kafka/idp.py" --port "$port" --dir "$dir" --secret "$OAUTH_SECRET" \
    </dev/null >>"$dir/idp.out" 2>&1 &
  echo $! >"$dir/idp.pid"
  cat "$dir/idp.pid"
}

# Ready when it logged that it listens (so whatever answers on the port is this IdP, not a process that took the port
# meanwhile) and GET /jwks answers 200 (the broker fetches the JWKS as it starts).
wait_idp() { # dir port pid
  local dir="$1" port="$2" pid="$3" i status
  for i in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -qs "Address already in use" "$dir/idp.out"; then
        log "identity provider in $dir: its port was taken meanwhile; retrying with other ports"; return 2
      fi
      log "identity provider in $dir exited during startup:"; tail -20 "$dir/idp.out" >&2 2>/dev/null; exit 1
    fi
    if grep -qs "listening on http://127.0.0.1:$port " "$dir/idp.log"; then
      status=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /jwks HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
        read -r -t 2 line <&3 && echo "$line") 2>/dev/null || true)
      [[ "$status" == "HTTP/1.1 200 "* ]] && return 0
    fi
    sleep 0.1
  done
  log "identity provider in $dir not ready after 10 s (output: $dir/idp.out)"; exit 1
}

start_single() {
  fetch
  local dir; dir=$(mktemp -d "$ROOT/kc-kafka.XXXXXX")
  make_pki "$dir"
  log4j_config "$dir"
  local pc pp ps pssl pm pss po pidp
  read -r pc pp ps pssl pm pss po pidp <<<"$(free_ports 8)"
  # The identity provider first: it makes its key while the storage is formatted. Whatever way this attempt ends
  # short of success (an exit or a lost port race), it must not stay behind. (Globals, not locals: the trap may run
  # after start_single's frame is gone; this attempt is a process of its own, see with_retries.)
  local idp="http://127.0.0.1:$pidp"
  IDP_PID=$(start_idp "$dir" "$pidp") STARTED=""
  trap '[ -n "$STARTED" ] || stop_pids "$IDP_PID"' EXIT
  local scram='org.apache.kafka.common.security.scram.ScramLoginModule required;'
  local plain='org.apache.kafka.common.security.plain.PlainLoginModule required user_plain="plain-pass";'
  {
    common_props "$dir" 1
    cat <<EOF
controller.quorum.voters=1@127.0.0.1:$pc
listeners=CONTROLLER://127.0.0.1:$pc,PLAINTEXT://127.0.0.1:$pp,SASL_PLAINTEXT://127.0.0.1:$ps,SSL://127.0.0.1:$pssl,MTLS://127.0.0.1:$pm,SASL_SSL://127.0.0.1:$pss,OAUTH://127.0.0.1:$po
advertised.listeners=PLAINTEXT://127.0.0.1:$pp,SASL_PLAINTEXT://127.0.0.1:$ps,SSL://localhost:$pssl,MTLS://localhost:$pm,SASL_SSL://localhost:$pss,OAUTH://127.0.0.1:$po
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,OAUTH:SASL_PLAINTEXT
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/server.p12
ssl.keystore.password=kc-test-pass
ssl.key.password=kc-test-pass
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$dir/ca.pem
listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
listener.name.oauth.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=$idp/jwks
listener.name.oauth.oauthbearer.sasl.oauthbearer.expected.audience=kc-kafka
listener.name.oauth.oauthbearer.sasl.oauthbearer.expected.issuer=$idp
listener.name.oauth.oauthbearer.sasl.oauthbearer.clock.skew.seconds=2
listener.name.oauth.oauthbearer.connections.max.reauth.ms=60000
EOF
    extra_props
  } >"$dir/server.properties"
  # Kafka 4 fetches no OAuth URL that this system property does not list (empty by default).
  write_start "$dir" "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=$idp/jwks"
  format "$dir" "$(new_cluster_id)" \
    --add-scram 'SCRAM-SHA-512=[name=scram512,password=scram512-pass]' \
    --add-scram 'SCRAM-SHA-256=[name=scram256,password=scram256-pass]'
  local pid rc=0
  wait_idp "$dir" "$pidp" "$IDP_PID" || rc=$?
  if [ "$rc" -ne 0 ]; then rm -rf "$dir"; return "$rc"; fi
  pid=$(launch "$dir")
  wait_ready "$dir" "$pp" "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then stop_pids "$IDP_PID"; rm -rf "$dir"; return "$rc"; fi
  STARTED=1
  log "Apache Kafka $KAFKA_VERSION ready on 127.0.0.1:$pp (dir $dir)"
  echo "export KC_KAFKA_BROKERS=127.0.0.1:$pp KC_KAFKA_SCRAM_BROKERS=127.0.0.1:$ps KC_KAFKA_SSL_BROKERS=localhost:$pssl" \
    "KC_KAFKA_MTLS_BROKERS=localhost:$pm KC_KAFKA_SASL_SSL_BROKERS=localhost:$pss KC_KAFKA_CA=$dir/ca.pem" \
    "KC_KAFKA_CLIENT_CERT=$dir/client.pem KC_KAFKA_CLIENT_KEY=$dir/client.key" \
    "KC_KAFKA_OAUTH_BROKERS=127.0.0.1:$po KC_OAUTH_TOKEN_URL=$idp/token KC_OAUTH_CLIENT_ID=kc-client" \
    "KC_OAUTH_CLIENT_SECRET=$OAUTH_SECRET KC_OAUTH_AUDIENCE=kc-kafka KC_OAUTH_SHORT_CLIENT_ID=kc-short" \
    "KC_OAUTH_NOACCESS_CLIENT_ID=kc-noaccess KC_KAFKA_PID=$pid KC_KAFKA_DIR=$dir KC_KAFKA_LIBS=$LIBS"
}

start_cluster() {
  local n="${1:-3}"
  fetch
  local root; root=$(mktemp -d "$ROOT/kc-kafka-cluster.XXXXXX")
  local i voters="" brokers="" pids="" id
  local -a pc pp
  local -a ports; read -r -a ports <<<"$(free_ports $((2 * n)))"
  for i in $(seq 1 "$n"); do
    pc[i]=${ports[2*i-2]}; pp[i]=${ports[2*i-1]}
    voters="${voters:+$voters,}$i@127.0.0.1:${pc[i]}"
    brokers="${brokers:+$brokers,}127.0.0.1:${pp[i]}"
  done
  local rf=$(( n < 3 ? n : 3 )) isr=$(( n < 3 ? 1 : 2 ))
  id=$(new_cluster_id)
  for i in $(seq 1 "$n"); do
    local dir="$root/node$i"; mkdir -p "$dir"
    log4j_config "$dir"
    {
      common_props "$dir" "$i"
      cat <<EOF
controller.quorum.voters=$voters
listeners=CONTROLLER://127.0.0.1:${pc[i]},PLAINTEXT://127.0.0.1:${pp[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${pp[i]}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
EOF
      extra_props
    } >"$dir/server.properties"
    write_start "$dir"
    format "$dir" "$id" &
  done
  wait
  for i in $(seq 1 "$n"); do
    pids="${pids:+$pids,}$(launch "$root/node$i")"
  done
  IFS=, read -r -a pid_arr <<<"$pids"
  local rc=0
  for i in $(seq 1 "$n"); do wait_ready "$root/node$i" "${pp[i]}" "${pid_arr[i-1]}" || { rc=$?; break; }; done
  if [ "$rc" -ne 0 ]; then stop_pids "${pid_arr[@]}"; rm -rf "$root"; return "$rc"; fi
  log "Apache Kafka $KAFKA_VERSION cluster of $n ready on $brokers (dir $root)"
  echo "export KC_KAFKA_CLUSTER=$brokers KC_KAFKA_CLUSTER_PIDS=$pids KC_KAFKA_CLUSTER_DIR=$root KC_KAFKA_LIBS=$LIBS"
}

stop_pids() { # pids...
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}

# A start that lost a port race (exit 2) is retried with new ports and a new folder. Each attempt runs as its own
# process so that `set -e` stays in force inside it.
with_retries() {
  local attempt rc
  fetch
  for attempt in 1 2 3; do
    rc=0; "$0" "$@" || rc=$?
    [ "$rc" -ne 2 ] && return "$rc"
  done
  log "no free ports after 3 attempts"; exit 1
}

case "${1:-start}" in
fetch) fetch ;;
start) with_retries __start ;;
cluster) with_retries __cluster "${2:-3}" ;;
__start) start_single ;;
__cluster) start_cluster "${2:-3}" ;;
stop)
  if [ -n "${KC_KAFKA_PID:-}" ]; then stop_pids "$KC_KAFKA_PID"; fi
  if [ -n "${KC_KAFKA_DIR:-}" ] && [ -d "$KC_KAFKA_DIR" ]; then
    [ -f "$KC_KAFKA_DIR/pid" ] && stop_pids "$(cat "$KC_KAFKA_DIR/pid")"
    [ -f "$KC_KAFKA_DIR/idp.pid" ] && stop_pids "$(cat "$KC_KAFKA_DIR/idp.pid")"
    [ -n "${KC_KAFKA_KEEP_DIR:-}" ] || rm -rf "$KC_KAFKA_DIR"
  fi
  if [ -n "${KC_KAFKA_CLUSTER_DIR:-}" ] && [ -d "$KC_KAFKA_CLUSTER_DIR" ]; then
    IFS=, read -r -a ps <<<"${KC_KAFKA_CLUSTER_PIDS:-}"
    for f in "$KC_KAFKA_CLUSTER_DIR"/node*/pid; do [ -f "$f" ] && ps+=("$(cat "$f")"); done
    stop_pids "${ps[@]}"
    [ -n "${KC_KAFKA_KEEP_DIR:-}" ] || rm -rf "$KC_KAFKA_CLUSTER_DIR"
  fi
  ;;
stop-all)
  # Every broker under $KC_KAFKA_ROOT, single or cluster node, and every identity provider (a test run's cleanup).
  ps=()
  for f in "$ROOT"/kc-kafka*/pid "$ROOT"/kc-kafka*/idp.pid "$ROOT"/kc-kafka-cluster*/node*/pid; do
    [ -f "$f" ] && ps+=("$(cat "$f")")
  done
  [ ${#ps[@]} -gt 0 ] && stop_pids "${ps[@]}"
  rm -rf "$ROOT"/kc-kafka*
  ;;
*) echo "usage: $0 start|stop|stop-all|cluster N|fetch" >&2; exit 2 ;;
esac
