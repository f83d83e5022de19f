# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this
# The `keycloak` peer: Keycloak (org.keycloak:keycloak-quarkus-dist from
# Maven Central) in dev mode on 127.0.0.1 over HTTPS, with a certificate
# signed by the test CA, its H2 database under the run directory, and a
# realm set up through the admin REST API. Sourced by lib.sh; `up_keycloak`
# is called by testenv/up (it uses up's start_proc, wait_for, gen_pki and
# apt_install).

KEYCLOAK_VERSION="26.7.3"
KEYCLOAK_PORT=28443
# Dev mode listens on HTTP too, whatever --http-enabled says; keep it in our range.
KEYCLOAK_HTTP_PORT=28080
KEYCLOAK_REALM="tenantry"
KEYCLOAK_HOME="$TESTENV_CACHE/keycloak-$KEYCLOAK_VERSION"
KEYCLOAK_DIR="$TESTENV_RUN/keycloak"
KEYCLOAK_URL="https://127.0.0.1:$KEYCLOAK_PORT"
# The clients the realm gets (see keycloak_setup_realm).
KEYCLOAK_ADMIN_CLIENT="tenantry-admin"
KEYCLOAK_KUBERNETES_CLIENT="kubernetes"
KEYCLOAK_PORTAL_CLIENT="tenantry-portal"
KEYCLOAK_VAULT_CLIENT="vault"

PROC_PORTS[keycloak]="$KEYCLOAK_PORT $KEYCLOAK_HTTP_PORT"
PEER_PROCS[keycloak]="keycloak"

# A JDK that runs Keycloak 26 (Java 21 or newer): $TENANTRY_KEYCLOAK_JAVA_HOME,
# else the newest Temurin under /usr/lib/jvm, else JAVA_HOME or java on PATH
# when they are new enough.
keycloak_java_home() {
  local candidate version
  for candidate in "${TENANTRY_KEYCLOAK_JAVA_HOME:-}" $(ls -d /usr/lib/jvm/temurin-*-jdk* 2>/dev/null | sort -t- -k2 -n -r) \
    "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
    version="$("$candidate/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    if [ "${version%%.*}" -ge 21 ] 2>/dev/null; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

# Fetch the distribution with Maven into the cache (once per version).
ensure_keycloak_dist() {
  [ -x "$KEYCLOAK_HOME/bin/kc.sh" ] && [ -f "$KEYCLOAK_HOME/.complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || apt_install maven
  local tmp="$KEYCLOAK_HOME.tmp.$$" t0=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "fetching org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz with Maven (~176 MB; log: $TESTENV_RUN/mvn-keycloak.log)"
  if ! mvn -B -q dependency:copy "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
    "-DoutputDirectory=$tmp" >"$TESTENV_RUN/mvn-keycloak.log" 2>&1; then
    rm -rf "$tmp"
    die "mvn could not fetch keycloak-quarkus-dist $KEYCLOAK_VERSION; see $TESTENV_RUN/mvn-keycloak.log"
  fi
  tar -xzf "$tmp/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$tmp" ||
    die "cannot unpack keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
  rm -f "$tmp/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
  rm -rf "$KEYCLOAK_HOME"
  mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$KEYCLOAK_HOME"
  rm -rf "$tmp"
  touch "$KEYCLOAK_HOME/.complete"
  log "fetched Keycloak $KEYCLOAK_VERSION in $((SECONDS - t0)) s -> $KEYCLOAK_HOME"
}

# A serving certificate for 127.0.0.1 signed by the test CA (the kube PKI).
keycloak_cert() {
  [ -s "$KEYCLOAK_DIR/tls.crt" ] && [ -s "$KEYCLOAK_DIR/tls.key" ] && return 0
  (
    cd "$KEYCLOAK_DIR"
    umask 077
    openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=keycloak" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >tls.ext
    openssl x509 -req -in tls.csr -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
      -extfile tls.ext -out tls.crt 2>/dev/null
    rm -f tls.csr tls.ext
  )
}

# A random secret kept in the run dir (stable across restarts).
keycloak_secret() {
  local file="$KEYCLOAK_DIR/$1.secret"
  if [ ! -s "$file" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$file")
  fi
  cat "$file"
}

keycloak_ready() {
  curl -sSf --max-time 5 --cacert "$PKI/ca.crt" "$KEYCLOAK_URL/realms/master/.well-known/openid-configuration" >/dev/null
}

# curl the admin REST API with the bootstrap admin's token: kc_api METHOD PATH [JSON].
# Prints the body; fails on HTTP >= 400 except 409 (already exists).
kc_api() {
  local method="$1" path="$2" body="${3:-}" out status
  out="$(mktemp)"
  status="$(curl -sS --max-time 30 --cacert "$PKI/ca.crt" -o "$out" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $KC_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${body:+--data "$body"} "$KEYCLOAK_URL/admin/realms$path")" || status=000
  cat "$out"
  rm -f "$out"
  case "$status" in
    2?? | 409) return 0 ;;
    *)
      log "keycloak: $method /admin/realms$path answered HTTP $status"
      return 1
      ;;
  esac
}

# The id of client CLIENT_ID in the realm.
kc_client_id() {
  kc_api GET "/$KEYCLOAK_REALM/clients?clientId=$1" | jq -r '.[0].id // empty'
}

# Create a client from JSON unless it exists; keep its secret as given.
kc_client() {
  local client_id="$1" json="$2"
  if [ -z "$(kc_client_id "$client_id")" ]; then
    kc_api POST "/$KEYCLOAK_REALM/clients" "$json" >/dev/null || die "keycloak: cannot create client $client_id"
  fi
}

# The realm, its clients and the admin client's rights. Idempotent.
keycloak_setup_realm() {
  KC_ADMIN_TOKEN="$(curl -sSf --max-time 30 --cacert "$PKI/ca.crt" \
    --data-urlencode grant_type=password --data-urlencode client_id=admin-cli \
    --data-urlencode username=admin --data-urlencode "password=$(keycloak_secret bootstrap-admin)" \
    "$KEYCLOAK_URL/realms/master/protocol/openid-connect/token" | jq -r .access_token)" ||
    die "keycloak: the bootstrap admin cannot log in; see $TESTENV_RUN/keycloak.log"
  kc_api POST "" "$(jq -n --arg r "$KEYCLOAK_REALM" \
    '{realm: $r, enabled: true, registrationAllowed: false, accessTokenLifespan: 900}')" >/dev/null ||
    die "keycloak: cannot create realm $KEYCLOAK_REALM"
  local groups_mapper
  groups_mapper='{name: "groups", protocol: "openid-connect", protocolMapper: "oidc-group-membership-mapper",
    config: {"claim.name": "groups", "full.path": "false", "id.token.claim": "true",
             "access.token.claim": "true", "userinfo.token.claim": "true"}}'
  # The admin client tenantry's idp target uses (client credentials).
  kc_client "$KEYCLOAK_ADMIN_CLIENT" "$(jq -n --arg id "$KEYCLOAK_ADMIN_CLIENT" \
    --arg s "$(keycloak_secret "$KEYCLOAK_ADMIN_CLIENT")" \
    '{clientId: $id, secret: $s, publicClient: false, serviceAccountsEnabled: true,
      standardFlowEnabled: false, directAccessGrantsEnabled: false}')"
  # kubectl's client: public; password grant and device flow for tests and kubelogin.
  kc_client "$KEYCLOAK_KUBERNETES_CLIENT" "$(jq -n --arg id "$KEYCLOAK_KUBERNETES_CLIENT" \
    "{clientId: \$id, publicClient: true, standardFlowEnabled: true, directAccessGrantsEnabled: true,
      redirectUris: [\"http://localhost:8000\", \"http://localhost:18000\"],
      attributes: {\"oauth2.device.authorization.grant.enabled\": \"true\"},
      protocolMappers: [$groups_mapper]}")"
  # The portal's client: confidential, authorization code flow.
  kc_client "$KEYCLOAK_PORTAL_CLIENT" "$(jq -n --arg id "$KEYCLOAK_PORTAL_CLIENT" \
    --arg s "$(keycloak_secret "$KEYCLOAK_PORTAL_CLIENT")" \
    "{clientId: \$id, secret: \$s, publicClient: false, standardFlowEnabled: true,
      redirectUris: [\"http://127.0.0.1/*\", \"http://localhost/*\"], protocolMappers: [$groups_mapper]}")"
  # OpenBao's OIDC auth mounts: confidential, the CLI's and the UI's callbacks.
  kc_client "$KEYCLOAK_VAULT_CLIENT" "$(jq -n --arg id "$KEYCLOAK_VAULT_CLIENT" \
    --arg s "$(keycloak_secret "$KEYCLOAK_VAULT_CLIENT")" \
    "{clientId: \$id, secret: \$s, publicClient: false, standardFlowEnabled: true, directAccessGrantsEnabled: true,
      redirectUris: [\"http://localhost:8250/oidc/callback\", \"http://127.0.0.1:$BAO_PORT/*\"],
      protocolMappers: [$groups_mapper]}")"
  # The admin client's service account manages users and groups of this realm.
  local sa management roles
  sa="$(kc_api GET "/$KEYCLOAK_REALM/clients/$(kc_client_id "$KEYCLOAK_ADMIN_CLIENT")/service-account-user" | jq -r .id)"
  management="$(kc_client_id realm-management)"
  roles="$(kc_api GET "/$KEYCLOAK_REALM/clients/$management/roles" |
    jq -c '[.[] | select(.name == "manage-users" or .name == "view-users" or .name == "query-users" or .name == "query-groups")]')"
  kc_api POST "/$KEYCLOAK_REALM/users/$sa/role-mappings/clients/$management" "$roles" >/dev/null ||
    die "keycloak: cannot grant the admin client its roles"
}

up_keycloak() {
  command -v jq >/dev/null 2>&1 || apt_install jq
  ensure_keycloak_dist
  local java_home
  java_home="$(keycloak_java_home)" ||
    die "Keycloak $KEYCLOAK_VERSION needs Java 21 or newer (found none under /usr/lib/jvm/temurin-*, JAVA_HOME or PATH); set TENANTRY_KEYCLOAK_JAVA_HOME"
  mkdir -p "$KEYCLOAK_DIR"
  gen_pki
  keycloak_cert
  # kc.sh stays the parent of java (it forwards signals), or execs java
  # after its first build; start_proc's exe check is redone once it is up.
  start_proc keycloak env JAVA_HOME="$java_home" \
    JAVA_OPTS_KC_HEAP="-Xms64m -Xmx768m" \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$(keycloak_secret bootstrap-admin)" \
    "$KEYCLOAK_HOME/bin/kc.sh" start-dev \
    --http-enabled=false \
    --http-host=127.0.0.1 \
    --http-port="$KEYCLOAK_HTTP_PORT" \
    --https-port="$KEYCLOAK_PORT" \
    --https-certificate-file="$KEYCLOAK_DIR/tls.crt" \
    --https-certificate-key-file="$KEYCLOAK_DIR/tls.key" \
    --hostname="$KEYCLOAK_URL" \
    --db=dev-file \
    "--db-url=jdbc:h2:file:$KEYCLOAK_DIR/h2/keycloakdb;NON_KEYWORDS=VALUE" \
    --cache=local
  # The command line holds the bootstrap admin's password.
  chmod 600 "$TESTENV_RUN/keycloak.cmd"
  wait_for keycloak 400 keycloak_ready
  readlink "/proc/$(proc_pid keycloak)/exe" >"$TESTENV_RUN/keycloak.exe"
  keycloak_setup_realm
  log "keycloak ready: $KEYCLOAK_URL/realms/$KEYCLOAK_REALM (admin client $KEYCLOAK_ADMIN_CLIENT)"
}

# The apiserver trusts the realm whenever keycloak runs or is being started
# (unless TENANTRY_TESTENV_OIDC_ISSUER_URL names another issuer).
keycloak_oidc_defaults() {
  [ -n "${TENANTRY_TESTENV_OIDC_ISSUER_URL:-}" ] && return 0
  wants keycloak || peer_running keycloak || return 0
  TENANTRY_TESTENV_OIDC_ISSUER_URL="$KEYCLOAK_URL/realms/$KEYCLOAK_REALM"
  TENANTRY_TESTENV_OIDC_CLIENT_ID="${TENANTRY_TESTENV_OIDC_CLIENT_ID:-$KEYCLOAK_KUBERNETES_CLIENT}"
  TENANTRY_TESTENV_OIDC_CA_FILE="${TENANTRY_TESTENV_OIDC_CA_FILE:-$PKI/ca.crt}"
}

# Lines of env.sh for a running keycloak.
keycloak_env() {
  q KEYCLOAK_URL "$KEYCLOAK_URL"
  q KEYCLOAK_REALM "$KEYCLOAK_REALM"
  q KEYCLOAK_ISSUER_URL "$KEYCLOAK_URL/realms/$KEYCLOAK_REALM"
  q KEYCLOAK_CA_FILE "$PKI/ca.crt"
  q KEYCLOAK_BOOTSTRAP_ADMIN admin
  q KEYCLOAK_BOOTSTRAP_ADMIN_PASSWORD "$(cat "$KEYCLOAK_DIR/bootstrap-admin.secret")"
  q KEYCLOAK_ADMIN_CLIENT_ID "$KEYCLOAK_ADMIN_CLIENT"
  q KEYCLOAK_ADMIN_CLIENT_SECRET "$(cat "$KEYCLOAK_DIR/$KEYCLOAK_ADMIN_CLIENT.secret")"
  q KEYCLOAK_KUBERNETES_CLIENT_ID "$KEYCLOAK_KUBERNETES_CLIENT"
  q KEYCLOAK_PORTAL_CLIENT_ID "$KEYCLOAK_PORTAL_CLIENT"
  q KEYCLOAK_PORTAL_CLIENT_SECRET "$(cat "$KEYCLOAK_DIR/$KEYCLOAK_PORTAL_CLIENT.secret")"
  q KEYCLOAK_VAULT_CLIENT_ID "$KEYCLOAK_VAULT_CLIENT"
  q KEYCLOAK_VAULT_CLIENT_SECRET "$(cat "$KEYCLOAK_DIR/$KEYCLOAK_VAULT_CLIENT.secret")"
}
