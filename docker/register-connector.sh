#!/bin/sh
# One-shot job of docker/compose.cdc.yml: registers the Debezium source with Kafka Connect,
# then waits until its first topic exists so the sink starts with something to subscribe to.
# Usage: register-connector.sh CONNECTOR.json TOPIC   (env CONNECT_URL, PROXY_URL)
set -eu
file=$1 topic=$2
connect=${CONNECT_URL:-http://connect:8083}
proxy=${PROXY_URL:-http://redpanda:8082}

until curl -fsS -o /dev/null "$connect/connectors"; do
  echo "register: waiting for Kafka Connect at $connect"; sleep 3
done

code=$(curl -sS -o /tmp/register.out -w '%{http_code}' -X POST \
  -H 'Content-Type: application/json' --data @"$file" "$connect/connectors")
case $code in
  201) echo "register: created connector from $file" ;;
  409) echo "register: connector from $file already exists" ;;
  *) echo "register: HTTP $code from $connect/connectors:" >&2; cat /tmp/register.out >&2; exit 1 ;;
esac

i=0
until curl -fsS "$proxy/topics" | grep -q "\"$topic\""; do
  i=$((i + 1))
  if [ "$i" -gt 60 ]; then
    echo "register: topic $topic not created after 3 minutes; check: curl $connect/connectors/*/status" >&2
    exit 1
  fi
  echo "register: waiting for topic $topic"; sleep 3
done
echo "register: topic $topic is there"
