#!/usr/bin/env bash
# What an MIS does, against a running server (demo data): create a device dispense, complete it
# (signed), create two more and stop one and mark the other in error (signed), then create, update,
# list and read a licence. Needs curl and node. Each device request of the demo data takes one
# dispense at a time (…9201, …9204 to …9208 are alike); run it on fresh data.
#   npm start:          TOKEN=<the demo token npm start printed> bash examples/mis-walkthrough.sh
#   docker compose up:  TOKEN=<the token in `docker compose logs app`> STACK=compose bash examples/mis-walkthrough.sh
# Development mode only (NODE_ENV unset or development; the banner and its token are on the server's
# stderr): production mode generates no demo signer or token. The signer below runs with NODE_ENV=development.
# Signed methods are signed with the server's own development signer: on the host from ./data/dev/pki
# (`npm run cli -- sign`), on the compose stack inside the app container, whose volume holds the CA the
# app trusts. SIGN overrides the command (it reads the JSON payload on stdin, prints the compact JWS).
# Every step that fails stops the script; no empty or malformed signature is ever sent.
set -euo pipefail
API=${API:-http://127.0.0.1:4000}
: "${TOKEN:?set TOKEN to the demo token the server printed (in the banner of npm start, or in docker compose logs app)}"
if [ "${STACK:-}" = compose ]; then
  SIGN=${SIGN:-docker compose exec -T -e NODE_ENV=development app node dist/cli/main.js sign /dev/stdin}
else
  SIGN=${SIGN:-env NODE_ENV=development npm run --silent cli -- sign /dev/stdin}
fi
PATIENT=5062a28b-9fe3-4ec3-afa6-be917f5d6f01
DISPENSES=$API/api/patients/$PATIENT/device_dispenses
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
die() { echo "mis-walkthrough: $*" >&2; exit 1; }

call() { curl -sS -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
# Prints one field of the JSON on stdin; fails (and so stops the script) when it is missing.
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];if(v===undefined||v===null){console.error(`no ${process.argv[1]} in ${s.slice(0,500)}`);process.exit(1)}console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"; }
uuid() { node -e 'console.log(crypto.randomUUID())'; }
# Waits for an async job and prints its final answer; a job still pending after 10 s stops the script.
job() {
  local href answer status
  href=$(field data.links.0.href)
  for _ in $(seq 1 100); do
    answer=$(call "$API$href")
    status=$(echo "$answer" | field data.status 2>/dev/null || echo done)
    [ "$status" != pending ] && { echo "$answer"; return 0; }
    sleep 0.1
  done
  die "job $href still pending"
}
create() { # $1 dispense id, $2 device request id
  sed "s/REPLACE-WITH-A-NEW-UUID/$1/; s/8395d5be-c216-41f6-92d9-e1c4ac809201/$2/" examples/create-device-dispense.json > "$WORK/create.json"
  call -X POST "$DISPENSES" -d @"$WORK/create.json" | processed
}
signed() { # $1 dispense id, $2 JSON merged into the dispense as GET returns it → {"signed_data": "<JWS>"}
  local current signature
  current=$(call "$DISPENSES/$1")
  echo "$current" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify({...JSON.parse(s).data,...JSON.parse(process.argv[1])})))' "$2" > "$WORK/payload.json"
  signature=$($SIGN < "$WORK/payload.json") || die "signing failed: $SIGN"
  [[ "$signature" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] || die "the signer printed no compact JWS: '$signature'"
  echo "{\"signed_data\": \"$signature\"}"
}
# A job's answer must be a processed one (303 with the dispense link), else the script stops.
processed() { local answer; answer=$(job); echo "$answer" | grep -q '"status":"processed"' || die "job failed: $answer"; echo "$answer"; }

echo "== create a device dispense (async: 202, then the job)"
DD=$(uuid); create "$DD" 8395d5be-c216-41f6-92d9-e1c4ac809201
echo "== read it";  call "$DISPENSES/$DD" | field data.status
echo "== complete it (signed content: the dispense as GET returns it + status, when_handed_over, payment)"
signed "$DD" "{\"status\":\"completed\",\"when_handed_over\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"payment_amount\":50,\"payment_id\":\"R-1\"}" > "$WORK/complete.json"
call -X PATCH "$DISPENSES/$DD/actions/complete" -d @"$WORK/complete.json" | processed
call "$DISPENSES/$DD" | field data.status

echo "== create another and stop it"
DD2=$(uuid); create "$DD2" 8395d5be-c216-41f6-92d9-e1c4ac809204 > /dev/null
call -X PATCH "$DISPENSES/$DD2/actions/stop" | processed
call "$DISPENSES/$DD2" | field data.status

echo "== create a third and mark it in error (signed)"
DD3=$(uuid); create "$DD3" 8395d5be-c216-41f6-92d9-e1c4ac809205 > /dev/null
signed "$DD3" '{"status":"entered_in_error","status_reason":{"coding":[{"system":"device_dispense_mark_in_error_reasons","code":"incorrect_device"}]}}' > "$WORK/mie.json"
call -X PATCH "$DISPENSES/$DD3/actions/mark_in_error" -d @"$WORK/mie.json" | processed
call "$DISPENSES/$DD3" | field data.status

echo "== search the legal entity's dispenses"
call "$API/api/device_dispenses?page_size=5" | field paging

echo "== licences: create an additional one, update it, list and read"
LIC=$(call -X POST "$API/api/licenses" -d '{"type":"PHARMACY","license_number":"fd123443","issued_by":"Кваліфікаційна комісія","issued_date":"2022-02-28","active_from_date":"2022-03-01","expiry_date":"2027-02-28","order_no":"ORD-77","what_licensed":"виготовлення лікарських засобів","is_primary":false}')
echo "$LIC"
LIC_ID=$(echo "$LIC" | field data.id)
call -X PATCH "$API/api/licenses/$LIC_ID" -d '{"is_primary":false,"order_no":"ORD-78"}' | field data.order_no
call "$API/api/licenses" | field paging
call "$API/api/licenses/$LIC_ID" | field data.updated_at
echo "== done"
