#!/bin/sh
# Wait for the controller to render the config, then run Asterisk in the foreground.
set -eu
conf=/etc/vvk-asterisk/asterisk.conf
i=0
until [ -f "$conf" ]; do
    i=$((i + 1))
    [ "$i" -le 120 ] || { echo "no $conf after 120 s: is the controller rendering it?" >&2; exit 1; }
    sleep 1
done
# No DNS lookups of our own name (see ../shared/design/asterisk-notes.md).
grep -q "$(hostname)" /etc/hosts || echo "127.0.0.1 $(hostname)" >> /etc/hosts
exec asterisk -f -C "$conf"
